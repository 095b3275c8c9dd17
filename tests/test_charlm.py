"""Character-level language models (``chainrule.models.CharGPT``/``CharLSTM``) and ``chainrule train --model
gpt|lstm``: a few training steps lower the loss, sampling gives text of the vocabulary, option errors."""

import contextlib
import io
import re

import numpy as np
import pytest

import chainrule as cr

models = pytest.importorskip("chainrule.models")  # chainrule's own modules: skipped in the torch-oracle mode
datasets = pytest.importorskip("chainrule.datasets")
main = pytest.importorskip("chainrule.__main__").main

pytestmark = pytest.mark.beyond_torch

STEP = re.compile(r"step (\d+): train loss (\d+\.\d+), held-out loss (\d+\.\d+), (\d+) chars/s")
F = cr.nn.functional


def test_bundled_text_and_vocabulary_round_trip():
    text = datasets.load_text("declaration")
    assert text.startswith("In Congress, July 4, 1776.") and len(text) > 5000
    vocab = datasets.CharVocab(text)
    ids = vocab.encode("We hold these truths")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "We hold these truths"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("~")
    with pytest.raises(ValueError, match="bundled texts"):
        datasets.load_text("hamlet")


@pytest.mark.parametrize("make", [lambda v: models.CharGPT(v, context=16, d_model=32, n_layer=2, n_head=2, dropout=0.0),
                                  lambda v: models.CharLSTM(v, embed_dim=16, hidden_size=32)], ids=["gpt", "lstm"])
def test_a_few_steps_lower_the_loss_and_sampling_works(make):
    text = datasets.load_text()
    vocab = datasets.CharVocab(text)
    ids = vocab.encode(text)
    cr.manual_seed(0)
    model = make(len(vocab))
    opt = cr.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    fixed = datasets.random_windows(ids, 16, 8, np.random.default_rng(1))

    def loss_on(x, y):
        logits = model(cr.from_numpy(x))
        assert tuple(logits.shape) == x.shape + (len(vocab),)
        return F.cross_entropy(logits.reshape(-1, len(vocab)), cr.from_numpy(y).reshape(-1))

    before = loss_on(*fixed).item()
    for _ in range(25):
        loss = loss_on(*datasets.random_windows(ids, 16, 8, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_on(*fixed).item()
    assert after < before - 0.5, (before, after)
    prompt = cr.from_numpy(vocab.encode("We hold")[None])
    out = model.generate(prompt, 20, temperature=0.8, top_k=5, generator=cr.Generator().manual_seed(1))
    assert tuple(out.shape) == (1, 27) and vocab.decode(out[0].numpy()).startswith("We hold")
    again = model.generate(prompt, 20, temperature=0.8, top_k=5, generator=cr.Generator().manual_seed(1))
    assert cr.equal(out, again)  # same generator seed, same text


def test_gpt_refuses_sequences_longer_than_its_context():
    with pytest.raises(ValueError, match="longer than the context"):
        models.CharGPT(10, context=4, d_model=8, n_layer=1, n_head=2)(cr.zeros(1, 5, dtype=cr.int64))


@pytest.mark.parametrize("name", ["gpt", "lstm"])
def test_compiled_training_step_matches_eager(name):
    train_text = pytest.importorskip("chainrule.train_text")
    text = datasets.load_text()
    vocab = datasets.CharVocab(text)
    ids = vocab.encode(text)
    eager, traced = (train_text.build_model(name, len(vocab), 16) for _ in range(2))
    traced.load_state_dict(eager.state_dict())
    steps = [train_text.training_step(m, cr.optim.Adam(m.parameters(), lr=1e-2), compiled=c)
             for m, c in ((eager, False), (traced, True))]
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch = datasets.random_windows(ids, 16, 4, rng)
        losses = [step(*batch).item() for step in steps]
        assert abs(losses[0] - losses[1]) < 1e-4, losses
    for (name_, p), q in zip(eager.named_parameters(), traced.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-4, err_msg=name_)


def train(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *map(str, argv)])
    return code, out.getvalue()


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_cli_trains_prints_losses_and_a_sample(model):
    code, out = train("--model", model, "--steps", 20, "--batch-size", 4, "--no-progress")
    assert code == 0
    steps = [tuple(map(float, m.groups())) for m in STEP.finditer(out)]
    assert [int(s[0]) for s in steps] == list(range(2, 21, 2))
    assert steps[-1][1] < steps[0][1]  # the train loss went down
    assert re.search(r"final held-out loss \d+\.\d+ \| \d+ chars/s", out)
    sample = re.search(r"sample: '(.*)'", out).group(1)
    assert sample.startswith("We hold ") and len(sample) > 100


@pytest.mark.parametrize("argv", [["--model", "gpt", "--dataset", "mnist"], ["--model", "lstm", "--epochs", "1"],
                                  ["--model", "mlp", "--steps", "3"], ["--model", "mlp", "--compile"],
                                  ["--model", "lenet5", "--dataset", "declaration"]])
def test_cli_refuses_options_of_the_other_kind_of_model(argv):
    with pytest.raises(SystemExit, match="chainrule train"):
        train(*argv)
