# The hello.service of switch.nix: answers every connection on the listening
# socket it inherits as fd 3 (LISTEN_FDS=1) with $GREETING. A SIGTERM is
# taken between connections only, so a switch that stops the service drops
# no connection it accepted; once it came, no new one is accepted, and they
# wait in the socket's backlog, which flint keeps open, for the next
# generation.
import os
import select
import signal
import socket

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
assert os.environ.get("LISTEN_FDS") == "1", "expected one socket from the activator"
reply = (os.environ["GREETING"] + "\n").encode()
listener = socket.socket(fileno=3)
listener.setblocking(False)
while True:
    ready = select.select([listener], [], [], 0.05)[0]
    if signal.SIGTERM in signal.sigpending():
        break
    if not ready:
        continue
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        continue
    with conn:
        conn.setblocking(True)
        conn.sendall(reply)
