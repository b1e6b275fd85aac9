// Scriptable SMSC peer for imis-gateway's SMPP integration tests, on npm `smpp` 0.5.1
// (farhadi/node-smpp): an SMPP implementation the project did not write.
//
// SMPP on 127.0.0.1:$SMPP_PORT, HTTP control API on 127.0.0.1:$CTRL_PORT. Prints
// "SMSC ready smpp=<port> ctrl=<port>" once both listen (port 0 picks free ports).
//
// Behaviour
//   - bind_transceiver/transmitter/receiver checked against $SMSC_USER/$SMSC_PASS
//   - submit_sm answered with an upper-case hex message_id; every submit is recorded
//     (text as node-smpp decodes it, so the ESME's encoders are checked by another codec)
//   - registered_delivery & 3: a delivery receipt (esm_class 0x04, receipt text + TLVs)
//     after dlr_delay_ms, or BEFORE the submit_sm_resp when dlr_before_resp is set
//   - enquire_link answered, unbind answered then the session closed
//
// Control API (JSON)
//   GET  /stats            counters (deliver_sm_resp counts every answer; mo_resp and
//                          mo_resp_status only those to MO/USSD deliver_sm, dlr_resp the rest)
//   GET  /submits          every submit_sm received (id, to, from, text, data_coding,
//                          esm_class, udh (hex), ussd_service_op, its_session_info, ...)
//   POST /config           {"throttle_next":N, "throttle_status":S|[S,...], "reject_next":N, "reject_status":S,
//                           "resp_delay_ms":ms, "dlr_delay_ms":ms, "dlr_before_resp":bool,
//                           "dlr_stat":"DELIVRD"|"UNDELIV"|"EXPIRED", "dlr_tlvs":bool,
//                           "dlr_id_decimal":bool}
//   POST /mo               {"command":"deliver_sm"|"data_sm","from","to","text","data_coding",
//                           "udh":"hex","ussd_service_op",
//                           "its_session_info":[a,b],"extra":{...raw PDU fields}}
//                          answers {"delivered_to_sessions":N, "mo_ids":[id per session]}
//   GET  /mo_results       {"<mo id>": command_status of its response} for every MO answered
//                          (an MO with no entry got no response: the ESME never acknowledged it)
//   POST /raw              {"hex":"..."} writes raw bytes to every bound session
//   POST /drop             destroys every session's socket (no unbind)
//   POST /unbind           sends unbind to every bound session
//   POST /enquire_link     sends enquire_link to every bound session
'use strict';
const smpp = require('smpp');
const http = require('http');

const USER = process.env.SMSC_USER || 'esme';
const PASS = process.env.SMSC_PASS || 'secret';

const cfg = {
  throttle_next: 0,
  // ESME_RTHROTTLED; or a list, used one per throttled submit (e.g. [0x58, 0x14]).
  throttle_status: 0x58,
  reject_next: 0,
  reject_status: 0x0b,
  resp_delay_ms: 0,
  dlr_delay_ms: +(process.env.DLR_DELAY_MS || 100),
  dlr_before_resp: false,
  dlr_stat: 'DELIVRD',
  dlr_tlvs: true,
  // Receipt ids in decimal while submit_sm_resp ids are hex (as some SMSCs do).
  dlr_id_decimal: false,
};
let nextId = 1;
const sessions = new Set();
const stats = {
  binds: 0, bind_versions: [], bind_commands: [], submit_sm: 0, throttled: 0, rejected: 0,
  dlr_sent: 0, mo_sent: 0, deliver_sm_resp: 0, deliver_sm_resp_status: [], mo_resp: 0,
  mo_resp_status: [], dlr_resp: 0, enquire_link: 0,
  unbind: 0, unbind_resp: 0, generic_nack: 0, generic_nack_seq: [], sessions: 0,
  max_outstanding: 0, throttle_statuses: [], throttled_at_ms: [], data_sm_resp: 0, enquire_link_resp: 0,
};
const submits = [];
// Per MO (a peer-wide id, since sequence numbers restart with every session): the status
// of its response, so a test knows exactly which MO the ESME acknowledged.
let nextMoId = 1;
const moResults = {};
// Distinct accepted texts: lets a test wait for N messages without fetching every submit.
const acceptedTexts = new Set();
const STATE = { DELIVRD: 2, EXPIRED: 3, UNDELIV: 5 };

function pad(n) { return String(n).padStart(2, '0'); }
function smppDate(d) {
  return pad(d.getUTCFullYear() % 100) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) +
    pad(d.getUTCHours()) + pad(d.getUTCMinutes());
}

function messageParts(pdu) {
  const sm = pdu.short_message;
  if (Buffer.isBuffer(sm)) return { text: sm.toString('latin1'), udh: '' };
  if (sm && typeof sm === 'object') {
    const udh = (sm.udh || []).map((b) => Buffer.from(b).toString('hex')).join('');
    const text = Buffer.isBuffer(sm.message) ? sm.message.toString('latin1') : String(sm.message || '');
    return { text, udh };
  }
  return { text: String(sm || ''), udh: '' };
}

function sendReceipt(session, pdu, id, text) {
  const now = new Date();
  const stat = cfg.dlr_stat;
  if (cfg.dlr_id_decimal) id = parseInt(id, 16).toString(10);
  const receipt = `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${smppDate(now)} done date:${smppDate(now)} stat:${stat} err:000 text:${text.slice(0, 20)}`;
  const fields = {
    source_addr: pdu.destination_addr,
    destination_addr: pdu.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    short_message: receipt,
  };
  if (cfg.dlr_tlvs) {
    fields.receipted_message_id = id;
    fields.message_state = STATE[stat] || 7;
  }
  session.send(new smpp.PDU('deliver_sm', fields));
  stats.dlr_sent++;
}

const server = smpp.createServer({ debug: !!process.env.SMSC_DEBUG }, (session) => {
  session.bound = false;
  session.outstanding = 0;
  // Sequence numbers of the MO deliver_sm sent on this session, to tell their responses
  // from the responses to delivery receipts.
  session.moSeqs = new Set();
  // sequence_number -> peer-wide MO id (see /mo_results).
  session.moIds = new Map();
  stats.sessions++;
  const onBind = (pdu) => {
    if (pdu.system_id !== USER || pdu.password !== PASS) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    session.bound = pdu.command;
    sessions.add(session);
    stats.binds++;
    stats.bind_versions.push(pdu.interface_version);
    stats.bind_commands.push(pdu.command);
    session.send(pdu.response({ system_id: 'NODESMSC' }));
  };
  session.on('bind_transceiver', onBind);
  session.on('bind_transmitter', onBind);
  session.on('bind_receiver', onBind);
  session.on('enquire_link', (pdu) => { stats.enquire_link++; session.send(pdu.response()); });
  session.on('enquire_link_resp', () => { stats.enquire_link_resp++; });
  session.on('deliver_sm_resp', (pdu) => {
    stats.deliver_sm_resp++;
    stats.deliver_sm_resp_status.push(pdu.command_status);
    if (session.moSeqs.delete(pdu.sequence_number)) {
      stats.mo_resp++;
      stats.mo_resp_status.push(pdu.command_status);
      recordMoResult(session, pdu);
    } else {
      stats.dlr_resp++;
    }
  });
  session.on('data_sm_resp', (pdu) => {
    stats.data_sm_resp++;
    if (session.moSeqs.delete(pdu.sequence_number)) {
      stats.mo_resp++;
      stats.mo_resp_status.push(pdu.command_status);
      recordMoResult(session, pdu);
    }
  });
  session.on('generic_nack', (pdu) => {
    stats.generic_nack++;
    stats.generic_nack_seq.push(pdu.sequence_number);
  });
  session.on('unbind', (pdu) => {
    stats.unbind++;
    session.send(pdu.response());
    sessions.delete(session);
    session.close();
  });
  session.on('unbind_resp', () => { stats.unbind_resp++; sessions.delete(session); session.close(); });
  session.on('close', () => { sessions.delete(session); });
  session.on('error', () => { sessions.delete(session); });
  session.on('submit_sm', (pdu) => {
    if (!session.bound || session.bound === 'bind_receiver') {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    stats.submit_sm++;
    session.outstanding++;
    stats.max_outstanding = Math.max(stats.max_outstanding, session.outstanding);
    const respond = (fields) => {
      session.outstanding--;
      session.send(pdu.response(fields));
    };
    const later = (f) => (cfg.resp_delay_ms > 0 ? setTimeout(f, cfg.resp_delay_ms) : f());
    if (cfg.throttle_next > 0) {
      cfg.throttle_next--;
      stats.throttled++;
      const st = Array.isArray(cfg.throttle_status)
        ? (cfg.throttle_status.shift() ?? smpp.ESME_RTHROTTLED)
        : cfg.throttle_status;
      stats.throttle_statuses.push(st);
      stats.throttled_at_ms.push(Date.now()); // lets a test see the backoff grow
      later(() => respond({ command_status: st }));
      return;
    }
    if (cfg.reject_next > 0) {
      cfg.reject_next--;
      stats.rejected++;
      later(() => respond({ command_status: cfg.reject_status }));
      return;
    }
    const id = (nextId++).toString(16).toUpperCase();
    const { text, udh } = messageParts(pdu);
    acceptedTexts.add(udh ? `${udh}:${text}` : text);
    submits.push({
      id, from: pdu.source_addr, to: pdu.destination_addr, data_coding: pdu.data_coding,
      esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery,
      validity_period: pdu.validity_period ? String(pdu.validity_period) : '',
      text, udh, ussd_service_op: pdu.ussd_service_op,
      its_session_info: pdu.its_session_info ? Array.from(pdu.its_session_info) : null,
    });
    const wantDlr = (pdu.registered_delivery & 0x03) !== 0;
    if (wantDlr && cfg.dlr_before_resp) {
      sendReceipt(session, pdu, id, text);
      later(() => respond({ message_id: id }));
      return;
    }
    later(() => respond({ message_id: id }));
    if (wantDlr) setTimeout(() => sendReceipt(session, pdu, id, text), cfg.dlr_delay_ms);
  });
});

function recordMoResult(session, pdu) {
  const id = session.moIds.get(pdu.sequence_number);
  if (id !== undefined) {
    session.moIds.delete(pdu.sequence_number);
    moResults[id] = pdu.command_status;
  }
}

function json(res, value) { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(value)); }

function body(req, f) {
  let data = '';
  req.on('data', (c) => { data += c; });
  req.on('end', () => f(JSON.parse(data || '{}')));
}

function receivers() {
  return [...sessions].filter((s) => s.bound === 'bind_receiver' || s.bound === 'bind_transceiver');
}

const ctrl = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return json(res, { ...stats, bound: sessions.size, distinct_texts: acceptedTexts.size, cfg });
  if (req.method === 'GET' && req.url === '/submits') return json(res, submits);
  if (req.method === 'GET' && req.url === '/mo_results') return json(res, moResults);
  if (req.method === 'POST' && req.url === '/config') return body(req, (c) => { Object.assign(cfg, c); json(res, cfg); });
  if (req.method === 'POST' && req.url === '/mo') {
    return body(req, (mo) => {
      const fields = {
        source_addr: mo.from || '255754000001',
        destination_addr: mo.to || '15200',
      };
      if (mo.data_coding !== undefined) fields.data_coding = mo.data_coding;
      fields.short_message = mo.udh
        ? { udh: Buffer.from(mo.udh, 'hex'), message: mo.text || '' }
        : (mo.text || '');
      if (mo.udh) fields.esm_class = 0x40;
      if (mo.ussd_service_op !== undefined) fields.ussd_service_op = mo.ussd_service_op;
      if (mo.its_session_info !== undefined) fields.its_session_info = Buffer.from(mo.its_session_info);
      // "command": "data_sm" sends the text in message_payload (USSD gateways that use data_sm).
      const command = mo.command === 'data_sm' ? 'data_sm' : 'deliver_sm';
      if (command === 'data_sm') {
        fields.message_payload = fields.short_message;
        delete fields.short_message;
      }
      Object.assign(fields, mo.extra || {});
      const targets = receivers();
      const moIds = [];
      for (const s of targets) {
        const pdu = new smpp.PDU(command, fields);
        s.send(pdu);
        s.moSeqs.add(pdu.sequence_number);
        const id = nextMoId++;
        s.moIds.set(pdu.sequence_number, id);
        moIds.push(id);
      }
      stats.mo_sent += targets.length;
      json(res, { delivered_to_sessions: targets.length, mo_ids: moIds });
    });
  }
  if (req.method === 'POST' && req.url === '/raw') {
    return body(req, (r) => {
      const targets = receivers();
      for (const s of targets) s.socket.write(Buffer.from(r.hex, 'hex'));
      json(res, { written_to_sessions: targets.length });
    });
  }
  if (req.method === 'POST' && req.url === '/drop') {
    const n = sessions.size;
    for (const s of [...sessions]) { sessions.delete(s); s.socket.destroy(); }
    return json(res, { dropped: n });
  }
  if (req.method === 'POST' && req.url === '/enquire_link') {
    const n = sessions.size;
    for (const s of [...sessions]) s.send(new smpp.PDU('enquire_link', {}));
    return json(res, { sent: n });
  }
  if (req.method === 'POST' && req.url === '/unbind') {
    const n = sessions.size;
    for (const s of [...sessions]) s.send(new smpp.PDU('unbind', {}));
    return json(res, { unbound: n });
  }
  res.statusCode = 404;
  res.end('not found');
});

let ready = 0;
function announce() {
  if (++ready === 2) console.log(`SMSC ready smpp=${server.address().port} ctrl=${ctrl.address().port}`);
}
server.listen(+(process.env.SMPP_PORT || 0), '127.0.0.1', announce);
ctrl.listen(+(process.env.CTRL_PORT || 0), '127.0.0.1', announce);
