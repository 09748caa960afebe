"""The load for bench/instructions.sh: one CONNECT tunnel through the proxy,
TLS to a.test, then keep-alive `GET /hello` requests one after another.
Callgrind counts only the measured ones: its instrumentation is turned on
after the warm-up and off (then dumped) after the last request.

usage: client.py PROXY_PORT CA_FILE PROXY_PID REQUESTS
"""
import socket
import ssl
import subprocess
import sys

WARM_UP = 300

port, ca, pid, requests = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
# A stalled proxy fails the bench instead of hanging it.
raw = socket.create_connection(("127.0.0.1", port), timeout=60)
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
raw.sendall(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")
answer = b""
while b"\r\n\r\n" not in answer:
    chunk = raw.recv(4096)
    if not chunk:
        sys.exit("the proxy closed the tunnel")
    answer += chunk
if not answer.startswith(b"HTTP/1.1 200"):
    sys.exit(f"CONNECT answered {answer.splitlines()[0]!r}")
tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="a.test")
REQUEST = (
    b"GET /hello HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n"
    b"User-Agent: authlens-bench-instructions\r\n\r\n"
)


def one():
    tls.sendall(REQUEST)
    data = b""
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            sys.exit("the proxy closed the connection")
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            continue
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"answered {head.splitlines()[0]!r}")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        )
        if len(body) >= length:
            return


def callgrind(*args):
    subprocess.run(
        ["callgrind_control", *args, pid],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


for _ in range(WARM_UP):
    one()
callgrind("--instr=on")
for _ in range(requests):
    one()
callgrind("--instr=off")
callgrind("--dump")
