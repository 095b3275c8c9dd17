"""Moving batches from a worker process to the main process without copying them there.

A message is pickled with protocol 5. Every numpy array of at least ``SHARE_THRESHOLD`` bytes
(a chainrule tensor pickles as its array) goes out of band: the worker writes it into an
anonymous shared-memory file (``memfd``) and sends the file descriptor with the message over
its Unix socket (SCM_RIGHTS); the main process maps the file and rebuilds the array on that
mapping. So the main process, the one the training loop waits on, copies nothing, and the memory
is freed when the last array viewing it is garbage-collected. The files have no name, so a crash leaks nothing.
Smaller arrays ride inside the pickle, where one copy costs less than creating and mapping a file.
Where memfd or descriptor passing is missing (outside Linux) everything rides inside the pickle.
"""

import io
import mmap
import os
import pickle
import socket
import struct

SHARE_THRESHOLD = 1 << 20  # measured here: below ~1 MiB the socket copy beats mapping shared memory
_MAX_FDS = 250  # per message; the kernel accepts at most 253. Arrays beyond that ride in band.
_LENGTH = struct.Struct("<Q")  # with shared memory, a message is its length then the pickle
_MAP_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)  # Unix only, like memfd


def fd_socket(conn):
    """A socket on the descriptor of ``conn`` (a duplex Pipe end) for passing file descriptors,
    or None where shared memory is not used."""
    if not (hasattr(os, "memfd_create") and hasattr(socket, "send_fds")):
        return None
    return socket.socket(fileno=os.dup(conn.fileno()))


def send(conn, sock, obj):
    """Send ``obj`` to the process at the other end of ``conn``; large arrays go by shared memory
    (when ``sock`` is a socket from ``fd_socket``)."""
    fds = []

    def in_band(buffer):
        view = buffer.raw()
        if sock is None or view.nbytes < SHARE_THRESHOLD or len(fds) == _MAX_FDS:
            return True
        fd = os.memfd_create("chainrule-batch", os.MFD_CLOEXEC)
        fds.append(fd)
        written = 0
        while written < view.nbytes:
            written += os.write(fd, view[written:])
        return False

    try:
        if sock is None:
            conn.send_bytes(pickle.dumps(obj, protocol=5))
            return
        stream = io.BytesIO()
        stream.write(bytes(_LENGTH.size))
        pickle.dump(obj, stream, protocol=5, buffer_callback=in_band)
        with stream.getbuffer() as message:
            _LENGTH.pack_into(message, 0, len(message) - _LENGTH.size)
            # One sendmsg for the message and its descriptors: the receiver never waits between them.
            sent = socket.send_fds(sock, [message], fds)
            if sent < len(message):
                sock.sendall(message[sent:])
    finally:
        for fd in fds:  # the receiver holds its own descriptors now (or nobody needs them)
            os.close(fd)


def recv(conn, sock):
    """Receive one object sent with ``send``; raises EOFError if the sender went away."""
    if sock is None:
        return pickle.loads(conn.recv_bytes())
    head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, _MAX_FDS)
    try:
        head += _recv_exactly(sock, _LENGTH.size - len(head))
        (length,) = _LENGTH.unpack(head)
        payload = _recv_exactly(sock, length)
        buffers = [mmap.mmap(fd, 0, flags=_MAP_FLAGS) for fd in fds]
    finally:
        for fd in fds:
            os.close(fd)
    return pickle.loads(payload, buffers=buffers)


def _recv_exactly(sock, size):
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        n = sock.recv_into(view[received:])
        if n == 0:
            raise EOFError("the worker closed its connection in the middle of sending a batch")
        received += n
    return buffer
