"""PyTorch's ``torch.autograd.graph``: the nodes of the backward graph (defined in :mod:`chainrule.tape`)."""

from ..tape import AccumulateGrad, Node, OpNode, RemovableHandle

__all__ = ["AccumulateGrad", "Node", "OpNode", "RemovableHandle"]
