#!/usr/bin/env python3
"""A second SMSC peer for imis-gateway's SMPP tests, independent of the first one (npm
`smpp`, tests/smsc): its PDUs are encoded and decoded by PyPI's `smpplib` 2.2.4, a
different SMPP implementation in another language.

SMPP on 127.0.0.1:$SMPP_PORT and a JSON control API on 127.0.0.1:$CTRL_PORT (0 = free
ports); prints "SMSC ready smpp=<port> ctrl=<port>" once both listen.

Behaviour: bind_transceiver/transmitter/receiver checked against $SMSC_USER/$SMSC_PASS;
submit_sm answered with a decimal message_id and recorded; registered_delivery & 3 sends
a delivery receipt (esm_class 0x04, receipt text, receipted_message_id and message_state
TLVs) after 100 ms; enquire_link and unbind answered; every response the ESME sends is
recorded with its command, status and sequence number.

Control API
  GET  /stats      {"bound", "binds", "submit_sm", "dlr_sent", "responses": [{command_id,
                   status, seq}], "mo_resp_status": [status of each response to a /mo]}
  GET  /submits    every submit_sm: id, to, from, text, data_coding, esm_class, udh (hex),
                   ussd_service_op, its_session_info [a, b]
  POST /mo         {"from","to","text","data_coding","udh":"hex","ussd_service_op",
                   "its_session_info":[a,b]} -> deliver_sm to every receiving session;
                   answers {"delivered_to_sessions": n, "seqs": [...]}
  POST /raw        {"hex": "..."} written as is to every bound session
"""
import json
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from smpplib import smpp

USER = os.environ.get("SMSC_USER", "esme")
PASS = os.environ.get("SMSC_PASS", "secret")
lock = threading.Lock()
sessions = []
submits = []
stats = {"binds": 0, "submit_sm": 0, "dlr_sent": 0, "responses": [], "mo_resp_status": []}
next_id = [1000]


def tlv(tag, value):
    return struct.pack(">HH", tag, len(value)) + value


class Sequences:
    """What smpplib asks of its "client" to number PDUs: this peer's own counter."""

    def __init__(self):
        self.sequence = 0

    def next_sequence(self):
        self.sequence += 1
        return self.sequence


class Session:
    def __init__(self, sock):
        self.client = Sequences()
        self.sock = sock
        self.bound = None
        self.seq = 0
        self.wlock = threading.Lock()
        self.mo_seqs = set()

    def next_seq(self, mo=False):
        with self.wlock:
            self.seq += 1
            if mo:  # known as an MO's before its response can come
                self.mo_seqs.add(self.seq)
            return self.seq

    def write(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def send(self, pdu, extra_tlvs=b""):
        """Encodes with smpplib; TLVs smpplib's deliver_sm lacks are appended raw."""
        data = pdu.generate() + extra_tlvs
        self.write(struct.pack(">L", len(data)) + data[4:])

    def respond(self, req, name, status=0, **fields):
        resp = smpp.make_pdu(name, client=self.client, **fields)
        resp.sequence = req.sequence
        resp.status = status
        self.send(resp)

    def deliver(self, extra_tlvs=b"", mo=False, **fields):
        pdu = smpp.make_pdu("deliver_sm", client=self.client, **fields)
        pdu.sequence = self.next_seq(mo)
        self.send(pdu, extra_tlvs)
        return pdu.sequence


def as_text(v):
    return v.decode("latin-1") if isinstance(v, bytes) else v


def text_of(data_coding, octets):
    if data_coding == 8:
        return octets.decode("utf-16-be", "replace")
    return octets.decode("latin-1")


def on_submit(s, pdu):
    with lock:
        stats["submit_sm"] += 1
        next_id[0] += 1
        mid = str(next_id[0])
    sm = pdu.short_message or b""
    if not sm and getattr(pdu, "message_payload", None):
        sm = pdu.message_payload
    udh = b""
    if pdu.esm_class & 0x40 and sm:
        udh, sm = sm[: sm[0] + 1], sm[sm[0] + 1:]
    its = getattr(pdu, "its_session_info", None)
    rec = {
        "id": mid, "to": as_text(pdu.destination_addr), "from": as_text(pdu.source_addr),
        "text": text_of(pdu.data_coding, sm), "data_coding": pdu.data_coding,
        "esm_class": pdu.esm_class, "udh": udh.hex(),
        "ussd_service_op": getattr(pdu, "ussd_service_op", None),
        "its_session_info": None if its is None else [its >> 8, its & 0xFF],
    }
    with lock:
        submits.append(rec)
    s.respond(pdu, "submit_sm_resp", message_id=mid)
    if pdu.registered_delivery & 3:
        def receipt():
            now = time.strftime("%y%m%d%H%M", time.gmtime())
            text = ("id:%s sub:001 dlvrd:001 submit date:%s done date:%s stat:DELIVRD "
                    "err:000 text:%s" % (mid, now, now, text_of(pdu.data_coding, sm)[:20]))
            try:
                s.deliver(source_addr=rec["to"], destination_addr=rec["from"],
                          esm_class=0x04, short_message=text.encode("latin-1", "replace"),
                          receipted_message_id=mid, message_state=2)
            except OSError:
                return  # the session is gone (the gateway stopped): no receipt

            with lock:
                stats["dlr_sent"] += 1
        threading.Timer(0.1, receipt).start()


def on_pdu(s, data):
    command_id, status, seq = struct.unpack(">LLL", data[4:16])
    if command_id & 0x80000000:
        with lock:
            stats["responses"].append({"command_id": command_id, "status": status, "seq": seq})
            if command_id == 0x80000005 and seq in s.mo_seqs:
                stats["mo_resp_status"].append(status)
        return
    pdu = smpp.parse_pdu(data, client=s.client, allow_unknown_opt_params=True)
    name = pdu.command
    if name in ("bind_transceiver", "bind_transmitter", "bind_receiver"):
        ok = pdu.system_id in (USER, USER.encode()) and pdu.password in (PASS, PASS.encode())
        s.respond(pdu, name + "_resp", status=0 if ok else 0x0D, system_id="PYSMSC")
        if ok:
            s.bound = name
            with lock:
                sessions.append(s)
                stats["binds"] += 1
    elif name == "submit_sm":
        on_submit(s, pdu)
    elif name == "enquire_link":
        s.respond(pdu, "enquire_link_resp")
    elif name == "unbind":
        s.respond(pdu, "unbind_resp")
        raise EOFError


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve_session(sock):
    s = Session(sock)
    try:
        while True:
            head = read_exact(sock, 4)
            (n,) = struct.unpack(">L", head)
            on_pdu(s, head + read_exact(sock, n - 4))
    except (EOFError, OSError):
        pass
    finally:
        with lock:
            if s in sessions:
                sessions.remove(s)
        sock.close()


def mo(req):
    fields = {"source_addr": req.get("from", "255754000001"),
              "destination_addr": req.get("to", "15200"),
              "data_coding": req.get("data_coding", 0), "esm_class": 0}
    text = req.get("text", "")
    sm = text.encode("utf-16-be") if fields["data_coding"] == 8 else text.encode("latin-1")
    if req.get("udh"):
        sm = bytes.fromhex(req["udh"]) + sm
        fields["esm_class"] = 0x40
    fields["short_message"] = sm
    extra = b""
    if req.get("ussd_service_op") is not None:
        extra += tlv(0x0501, bytes([req["ussd_service_op"]]))
    if req.get("its_session_info") is not None:
        extra += tlv(0x1383, bytes(req["its_session_info"]))
    seqs = []
    with lock:
        targets = [s for s in sessions if s.bound in ("bind_transceiver", "bind_receiver")]
    for s in targets:
        seqs.append(s.deliver(extra, mo=True, **fields))
    return {"delivered_to_sessions": len(seqs), "seqs": seqs}


class Control(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            if self.path == "/stats":
                self.reply(dict(stats, bound=len(sessions)))
            elif self.path == "/submits":
                self.reply(submits)
            else:
                self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path == "/mo":
            self.reply(mo(req))
        elif self.path == "/raw":
            with lock:
                targets = list(sessions)
            for s in targets:
                s.write(bytes.fromhex(req["hex"]))
            self.reply({"written_to_sessions": len(targets)})
        else:
            self.send_error(404)


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ.get("SMPP_PORT", "0"))))
    listener.listen()
    ctrl = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("CTRL_PORT", "0"))), Control)
    threading.Thread(target=ctrl.serve_forever, daemon=True).start()
    print("SMSC ready smpp=%d ctrl=%d" % (listener.getsockname()[1], ctrl.server_address[1]),
          flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_session, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
