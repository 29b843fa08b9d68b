#!/usr/bin/python3
"""A journald stand-in for tests/test_log_stall.sh: binds a datagram socket
at PATH and reads nothing while the file GO does not exist (a stalled
journald: the socket's queue fills, senders that wait block); once GO
exists it reads every record, appending each to OUT followed by a line
"--", until SIGTERM. Prints "ready" to READY once bound."""
import os
import signal
import socket
import sys
import time

path, go, out, ready = sys.argv[1:5]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.exists(path):
    os.unlink(path)
s.bind(path)
with open(ready, "w") as f:
    f.write("ready\n")
while not os.path.exists(go):
    time.sleep(0.05)
with open(out, "ab", buffering=0) as f:
    while True:
        rec = s.recv(1 << 16)
        f.write(rec + b"\n--\n")
