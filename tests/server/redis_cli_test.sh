#!/usr/bin/env bash
# Debian's redis-cli against a fresh server (REDIS_HOST/REDIS_PORT, started by
# harness.py): binary keys and values round-trip byte for byte (-x from stdin,
# --raw output; "\xNN" escapes in commands read from stdin, --no-raw output),
# and a generated RESP script goes through `redis-cli --pipe`, then its results
# are read back.
# The "\xNN" in echoed commands are for redis-cli to parse, the "$" in RESP are literal:
# shellcheck disable=SC2016,SC2028,SC2059
set -euo pipefail
: "${REDIS_HOST:?run through harness.py}" "${REDIS_PORT:?run through harness.py}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FAILED=0
cli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
expect() {  # expect WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "FAILED: $1: expected [$2], got [$3]"
    FAILED=$((FAILED + 1))
  fi
}

# 1. A value holding every byte 0-255 twice, then CR LF and NUL, through -x.
for _ in 1 2; do
  for i in $(seq 0 255); do printf "\\x$(printf %02x "$i")"; done
done >"$T/value.bin"
printf '\r\n\0' >>"$T/value.bin"
expect "value size" 515 "$(stat -c %s "$T/value.bin")"
expect "SET -x" OK "$(cli -x SET bin:value <"$T/value.bin")"
cli --raw GET bin:value >"$T/got.bin"      # --raw appends one "\n"
head -c -1 "$T/got.bin" >"$T/got-trimmed.bin"
if ! cmp -s "$T/value.bin" "$T/got-trimmed.bin"; then
  echo "FAILED: GET --raw of the 0-255 value differs"; FAILED=$((FAILED + 1))
fi
expect "STRLEN-free check: EXISTS" 1 "$(cli EXISTS bin:value)"

# 2. A key of the bytes 1-255 as an argument (argv cannot hold NUL), value by -x.
KEY=$(for i in $(seq 1 255); do printf "\\x$(printf %02x "$i")"; done)
expect "binary key length" 255 "$(printf %s "$KEY" | wc -c)"
expect "SET binary key" OK "$(printf 'v\0w' | cli -x SET "$KEY")"
cli --raw GET "$KEY" | head -c -1 >"$T/got2.bin"
printf 'v\0w' >"$T/want2.bin"
cmp -s "$T/want2.bin" "$T/got2.bin" || { echo "FAILED: GET of the 1-255 key"; FAILED=$((FAILED + 1)); }

# 3. NUL, CR LF and 0xff in keys: commands read from stdin take "\xNN" escapes;
#    --no-raw prints the reply quoted the same way.
printf '%s\n' 'SET "k\x00\r\n\xff" "v\x00\r\n\xfe"' 'SET "\x00" "\x00"' >"$T/cmds.txt"
expect "SET escaped keys" "$(printf 'OK\nOK')" "$(cli <"$T/cmds.txt")"
expect "GET escaped key" '"v\x00\r\n\xfe"' "$(echo 'GET "k\x00\r\n\xff"' | cli --no-raw)"
expect "GET NUL key" '"\x00"' "$(echo 'GET "\x00"' | cli --no-raw)"
expect "GET a missing key" "(nil)" "$(echo 'GET "k\x00"' | cli --no-raw)"
expect "DEL escaped keys" "(integer) 2" "$(echo 'DEL "k\x00\r\n\xff" "\x00" "nokey"' | cli --no-raw)"
expect "EXISTS after DEL" "(integer) 0" "$(echo 'EXISTS "\x00"' | cli --no-raw)"
expect "DEL the others" 2 "$(cli DEL bin:value "$KEY")"

# 4. A pipelined RESP script: 4000 SETs, 500 INCRs, MSETs, binary keys.
resp() {  # resp ARG...: one command as a RESP array (byte lengths)
  printf '*%d\r\n' $#
  local a
  for a in "$@"; do printf '$%d\r\n%s\r\n' "$(printf %s "$a" | LC_ALL=C wc -c)" "$a"; done
}
{
  for i in $(seq 1 4000); do printf '*3\r\n$3\r\nSET\r\n$%d\r\npipe:%d\r\n$%d\r\nvalue-%d\r\n' \
    $((5 + ${#i})) "$i" $((6 + ${#i})) "$i"; done
  for _ in $(seq 1 500); do printf '*2\r\n$4\r\nINCR\r\n$8\r\npipe:ctr\r\n'; done
  for i in $(seq 1 20); do resp MSET "m:$i:a" "a$i" "m:$i:b" "b$i"; done
  # key "p\0\r\n" = 4 bytes, value "\0\xff\r\n" = 4 bytes, written by hand.
  printf '*3\r\n$3\r\nSET\r\n$4\r\np\0\r\n\r\n$4\r\n\0\xff\r\n\r\n'
  resp SET "pipe:1" "overwritten"
  resp DEL "pipe:2"
  resp GET "pipe:3"
  resp EXISTS "pipe:3" "pipe:2" "pipe:4"
} >"$T/script.resp"
REPLIES=$((4000 + 500 + 20 + 1 + 4))
cli --pipe <"$T/script.resp" >"$T/pipe.out" 2>&1 || true
cat "$T/pipe.out"
expect "--pipe summary" "errors: 0, replies: $REPLIES" "$(grep -o 'errors: [0-9]*, replies: [0-9]*' "$T/pipe.out")"
expect "INCR total" 500 "$(cli GET pipe:ctr)"
expect "overwritten" overwritten "$(cli GET pipe:1)"
expect "deleted" "" "$(cli --raw GET pipe:2)"
expect "pipe:4000" value-4000 "$(cli GET pipe:4000)"
expect "MSET" "$(printf 'a7\nb20')" "$(cli MGET m:7:a m:20:b)"
expect "binary pipe key" '"\x00\xff\r\n"' "$(echo 'GET "p\x00\r\n"' | cli --no-raw)"
expect "DBSIZE" $((3999 + 1 + 40 + 1)) "$(cli DBSIZE)"
# Every SET of the script reads back (one MGET per 1000 keys).
for base in 0 1000 2000 3000; do
  keys=(); want=""
  for j in $(seq 1 1000); do
    i=$((base + j)); [ "$i" -le 2 ] && continue
    keys+=("pipe:$i"); want+="value-$i"$'\n'
  done
  expect "MGET block $base" "${want%$'\n'}" "$(cli MGET "${keys[@]}")"
done

if [ "$FAILED" -ne 0 ]; then echo "redis_cli_test: $FAILED checks FAILED"; exit 1; fi
echo "redis_cli_test: all checks passed"
