#!/usr/bin/env bash
# Steps a mixed load up against a running server (started with the server.env that
# `loadtest prepare` wrote) and prints each step's report: at step L, L USSD sessions/s
# (about 5 hops each), L/40 officer MO/s over HTTP and L/40 over SMPP, L/10 GePG
# payments/s (5% delivered twice), after a GET /health baseline of the same run.
#
#   loadtest/mixed-load.sh http://127.0.0.1:8080 /tmp/lt/loadtest-keys "400 800 1200" [SECS]
#
# Each step pays fresh bills (offsets step by step), so prepare with enough --bills
# (BILLS, default 60000: the sum over the steps of L/10 × SECS × 1.2 + 100). FAMILIES is the
# prepare's --families (CHFIDs the USSD and officer flows look up); OFFSET the first bill
# (to run the script again on the same store).
set -euo pipefail
target=${1:?target URL}
keys=${2:?keys dir written by loadtest prepare}
levels=${3:-"200 400 600 800 1000"}
secs=${4:-20}
bin=${LOADTEST:-target/release/loadtest}
families=${FAMILIES:-200}
bills=${BILLS:-60000}
offset=${OFFSET:-0}
for L in $levels; do
  sms=$(awk "BEGIN { print $L / 40 }")
  pay=$(awk "BEGIN { print $L / 10 }")
  echo "== step $L: ussd_rate=$L sms_rate=$sms smsc_rate=$sms gepg_rate=$pay  ($(uptime))"
  "$bin" --target "$target" --duration "$secs" --families "$families" --baseline-secs 5 \
    --ussd-concurrency 200 --ussd-rate "$L" --sms-rate "$sms" \
    --smsc-rate "$sms" --smsc-officers 50 \
    --gepg-rate "$pay" --gepg-concurrency 16 --gepg-key "$keys/gepg.p12" \
    --gepg-bills "$bills" --gepg-bill-offset "$offset" 2>/dev/null
  offset=$(awk "BEGIN { print $offset + int($pay * $secs * 1.2) + 100 }")
done
