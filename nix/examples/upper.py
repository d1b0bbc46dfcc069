# The upper.service of echo.nix: accepts on the socket flint passes as fd 3
# (LISTEN_FDS=1) and answers each connection with its input upper-cased.
import os
import socket

assert os.environ.get("LISTEN_FDS") == "1", "expected one socket from the activator"
listener = socket.socket(fileno=3)
while True:
    conn, _ = listener.accept()
    with conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
            if b"\n" in data:
                break
        conn.sendall(data.upper())
