#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# An independent sodium peer for tests/integration/sodium_dissononce.sh:
# the wire format of docs/protocol.md spoken with dissononce (Debian's
# python3-dissononce, a Noise implementation in Python), sharing no code
# with libconduit. Sends stdin, then the end-of-stream; writes what it
# receives to stdout until the peer's end-of-stream.
#
# Usage: sodium_peer.py client|server tcp:PORT|unix:PATH KEYFILE PEER-PUBKEY
# Exit 0 when both directions ended cleanly, 3 when the peer's key is not
# PEER-PUBKEY, 4 on any other failure of the protocol.
import base64
import os
import socket
import sys
import threading

from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.private import PrivateKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.hash.blake2b import Blake2bHash
from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

PROLOGUE = b"vchan-conduit sodium 1"
TAG = 16
DATA_MAX = 65535 - TAG


def die(code, why):
    sys.stderr.write("sodium_peer: %s\n" % why)
    sys.stderr.flush()
    os._exit(code)


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            return None
        buf += b
    return bytes(buf)


def read_frame(s, what):
    hdr = read_exact(s, 2)
    if hdr is None:
        die(4, "the peer closed (%s)" % what)
    body = read_exact(s, hdr[0] << 8 | hdr[1])
    if body is None:
        die(4, "truncated frame (%s)" % what)
    return body


def send_frame(s, msg):
    s.sendall(len(msg).to_bytes(2, "big") + bytes(msg))


def main():
    role, where, keyfile, peer = sys.argv[1:5]
    with open(keyfile) as f:
        priv = base64.b64decode(f.read().strip(), validate=True)
    pinned = base64.b64decode(peer, validate=True)
    kind, addr = where.split(":", 1)
    if kind == "tcp":
        family, addr = socket.AF_INET, ("127.0.0.1", int(addr))
    else:
        family = socket.AF_UNIX
    if role == "server":
        ls = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(addr)
        ls.listen(1)
        s, _ = ls.accept()
        ls.close()
    else:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.connect(addr)

    dh = X25519DH()
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()), dh)
    hs.initialize(XXHandshakePattern(), role == "client", PROLOGUE,
                  s=dh.generate_keypair(PrivateKey(priv)))
    my_turn = role == "client"
    result = None
    while result is None:
        if my_turn:
            buf = bytearray()
            result = hs.write_message(b"", buf)
            send_frame(s, buf)
        else:
            payload = bytearray()
            try:
                result = hs.read_message(read_frame(s, "handshake"), payload)
            except Exception as e:
                die(4, "handshake failed: %r" % e)
            if hs.rs is not None and hs.rs.data != pinned:
                die(3, "the peer's key %s is not the pinned one"
                    % base64.b64encode(hs.rs.data).decode())
        my_turn = not my_turn
    # Split: the first cipher carries initiator -> responder.
    send_cs, recv_cs = result if role == "client" else (result[1], result[0])

    def sender():
        while True:
            data = sys.stdin.buffer.read1(DATA_MAX)
            if not data:
                break
            send_frame(s, send_cs.encrypt_with_ad(b"", data))
        send_frame(s, send_cs.encrypt_with_ad(b"", b""))  # end-of-stream

    t = threading.Thread(target=sender)
    t.start()
    out = sys.stdout.buffer
    while True:
        try:
            data = recv_cs.decrypt_with_ad(b"", read_frame(s, "data"))
        except Exception as e:
            die(4, "a frame failed authentication: %r" % e)
        if not data:
            break
        out.write(data)
    out.flush()
    t.join()
    s.close()


main()
