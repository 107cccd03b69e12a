#!/usr/bin/env bash
# The child's attacks on the child agent: a local unprivileged user (`nobody`, switched to
# with setpriv) against the release binaries, one line per attack with its outcome.
#
#   cargo build --release -p child-agent -p household-cli
#   cargo build --release -p child-agent --example logind_standin
#   sudo tests/adversarial.sh            # BIN_DIR=target/release by default
#
# Every attack must be held; the script exits 1 if one was not. Traffic stays on this
# machine: loopback, and unicast to the machine's own address (delivered locally). The
# full-disk attack mounts a small tmpfs in a mount namespace of its own.
# The logind attacks run against a stand-in logind on a private bus, built with
#   cargo build --release -p child-agent --example logind_standin
# (services/child-agent/tests/logind.rs has more of them, metering included).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-target/release}
if [ "$(id -u)" != 0 ]; then
    echo "skipped: the attacks run as nobody, and switching to nobody needs root"
    exit 0
fi
if ! command -v setpriv >/dev/null 2>&1; then
    echo "skipped: setpriv (util-linux) is not installed"
    exit 0
fi
for bin in child-agent household; do
    if [ ! -x "$BIN_DIR/$bin" ]; then
        echo "no $BIN_DIR/$bin: cargo build --release -p child-agent -p household-cli" >&2
        exit 2
    fi
done

work=$(mktemp -d)
chmod 755 "$work"
mkdir "$work/bin"
cp "$BIN_DIR/child-agent" "$BIN_DIR/household" "$work/bin/"
chmod 755 "$work/bin" "$work/bin/"*
agent_pid=
real_pid=
cleanup() {
    for pid in $agent_pid $real_pid; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Error messages on one line, without backtraces.
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
as_child() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
first_line() { printf '%s' "$1" | head -1; }
agent() { "$work/bin/child-agent" "$@"; }
passed=0
failed=0
# report HELD? NAME OUTCOME
report() {
    if [ "$1" = 0 ]; then
        passed=$((passed + 1))
        printf 'held    %s: %s\n' "$2" "$3"
    else
        failed=$((failed + 1))
        printf 'BROKEN  %s: %s\n' "$2" "$3"
    fi
}
status_field() { agent status --json --data-dir "$data" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# A device out of time for today, with one 5-minute credit the child may spend.
data="$work/data"
cat >"$work/policy.toml" <<'EOF'
time_zone = "UTC"
daily_minutes = 0
grace_minutes = 0
[extension_credits_per_day]
five_minute_count = 1
ten_minute_count = 0
EOF
port=$((40000 + RANDOM % 20000))
# exec'd directly (not through the function), so that $! is the agent itself.
"$work/bin/child-agent" run --no-mdns --data-dir "$data" --policy "$work/policy.toml" --usage-source simulated \
    --legacy-bind 0.0.0.0 --legacy-port "$port" \
    --on-lock "echo locked >> $work/hooks.log" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 300); do
    [ -S "$data/control.sock" ] && agent status --data-dir "$data" >/dev/null 2>&1 && break
    sleep 0.1
done
if ! agent status --data-dir "$data" >/dev/null 2>&1; then
    echo "the agent did not start:" >&2
    cat "$work/agent.log" >&2
    exit 2
fi
id=$(agent show-id --data-dir "$data")

# 1. The device ID over the control socket.
out=$(as_child "$work/bin/child-agent" show-id --data-dir "$data" 2>&1)
if [ -z "$(printf '%s' "$out" | grep -E '^[0-9A-F]{16}$')" ]; then
    report 0 "show-id as the child" "refused ($(first_line "$out"))"
else
    report 1 "show-id as the child" "got the device ID"
fi

# 2. The ID file, the store, the event log.
if as_child cat "$data/device-id" >/dev/null 2>&1 || as_child ls "$data/store" >/dev/null 2>&1 \
    || as_child ls "$data" >/dev/null 2>&1; then
    report 1 "read the store and the ID file" "readable"
else
    report 0 "read the store and the ID file" "permission denied (data dir 0711, store owner-only)"
fi
if as_child "$work/bin/child-agent" log --data-dir "$data" >/dev/null 2>&1; then
    report 1 "read the event log" "allowed"
else
    report 0 "read the event log" "refused"
fi

# 3. A leaked ID used from the device itself: loopback, its own address, other digits.
legacy_send() {
    as_child "$work/bin/household" legacy send --port "$port" --device-id "$id" "$@" 2>&1
}
credit=$(status_field credit_minutes)
own=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
for target in 127.0.0.1 ${own:+"$own"}; do
    for command in EXTEND_TIME:1440 'EXTEND_TIME:١٤٤٠'; do
        out=$(legacy_send --timeout 2 --to "$target" "$command")
        now=$(status_field credit_minutes)
        if [ "$now" = "$credit" ]; then
            report 0 "legacy send --to $target $command" "refused ($(first_line "${out##*answered: }")), credit still $now min"
        else
            report 1 "legacy send --to $target $command" "credit became $now min"
        fi
    done
done
[ -n "$own" ] || echo "note    the machine has no non-loopback IPv4 address: only loopback was tried"

# 4. 150 MiB on one control-socket line.
before=$(awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status")
out=$(as_child /usr/bin/python3 - "$data/control.sock" <<'EOF' 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
chunk = b"x" * (1 << 20)
sent = 0
try:
    for _ in range(150):
        s.sendall(chunk)
        sent += len(chunk)
except OSError:
    pass
answer = b""
try:
    while True:
        part = s.recv(65536)
        if not part:
            break
        answer += part
except OSError:
    pass
print(sent, answer.decode(errors="replace").strip())
EOF
)
after=$(awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status")
grown=$((after - before))
if printf '%s' "$out" | grep -q "longer than 4096 bytes" && [ "$grown" -lt 16384 ]; then
    report 0 "150 MiB request line" "answered 'request longer than 4096 bytes' and hung up; agent grew $grown KiB"
else
    report 1 "150 MiB request line" "agent grew $grown KiB; answer: ${out:0:120}"
fi

# 5. Sealed junk from 200 loopback addresses.
mkdir "$work/flood"
chmod 777 "$work/flood"
for round in 1 2 3 4 5; do
    for n in $(seq 1 200); do
        legacy_send --to 127.0.0.1 --from "127.1.0.$n" --timeout 0.3 EXTEND_TIME:1440 \
            >"$work/flood/$round.$n" &
    done
    wait $(jobs -p | grep -v "^$agent_pid$") 2>/dev/null
done
refused=$(grep -l "Command processing failed" "$work/flood/"* | wc -l)
sleep 0.5 # the audit events of refusals are stored with the agent's next write
events=$(agent log --data-dir "$data" --limit 100000 | grep -c '"legacy_command"')
if [ "$events" -le 12 ] && [ "$(status_field credit_minutes)" = "$credit" ]; then
    report 0 "1000 sealed commands from 200 loopback addresses" "$refused answered with a refusal, the rest dropped by the rate limits; $events audit events stored in all (bound: 5 a minute one by one + 1 summary per outcome)"
else
    report 1 "1000 sealed commands from 200 loopback addresses" "$events audit events stored"
fi

# 6. Stop the agent.
if as_child kill -TERM "$agent_pid" 2>/dev/null || ! kill -0 "$agent_pid" 2>/dev/null; then
    report 1 "kill the agent" "it stopped"
else
    report 0 "kill the agent" "not permitted"
fi

# 7. After all that: still locked, and the lock hook ran.
state=$(status_field state)
if [ "$state" = BLOCKED ] && grep -q locked "$work/hooks.log" 2>/dev/null; then
    report 0 "the device after the attacks" "still $state, the lock hook ran"
else
    report 1 "the device after the attacks" "state $state"
fi

# 8. What the child may do: spend its own credit, once.
first=$(as_child "$work/bin/child-agent" request-time 5 --data-dir "$data" 2>&1)
first_ok=$?
second=$(as_child "$work/bin/child-agent" request-time 5 --data-dir "$data" 2>&1)
second_ok=$?
if [ "$first_ok" = 0 ] && [ "$second_ok" != 0 ]; then
    report 0 "spend credits as the child" "one 5-minute credit granted, the next refused ($(first_line "$second"))"
else
    report 1 "spend credits as the child" "first: $first_ok, second: $second_ok"
fi

# 9. Fill the disk under the store: a 4 MiB tmpfs (world-writable, as /tmp is) in a mount
# namespace of this script's own, the agent's data inside, the child filling it.
mkdir "$work/disk"
printf 'time_zone = "UTC"\ndaily_minutes = 2\ngrace_minutes = 0\n' >"$work/short.toml"
out=$(unshare --mount --propagation private sh -c "
    mount -t tmpfs -o size=4m,mode=1777 tmpfs '$work/disk' || exit 3
    '$work/bin/child-agent' run --no-mdns --data-dir '$work/disk/data' --policy '$work/short.toml' \
        --speed 60 --legacy-mode off --on-lock 'echo lock >> $work/disk.log' 2>/dev/null &
    agent=\$!
    i=0; while [ ! -S '$work/disk/data/control.sock' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
    setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        dd if=/dev/zero of='$work/disk/junk' bs=64k 2>/dev/null
    df -k '$work/disk' | tail -1 | awk '{print \$5}'
    i=0; while ! grep -q '^lock' '$work/disk.log' 2>/dev/null && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
    '$work/bin/child-agent' status --json --data-dir '$work/disk/data'
    kill \$agent; wait \$agent
" 2>&1)
code=$?
if [ "$code" = 3 ]; then
    echo "note    cannot mount a tmpfs here: the full-disk attack was not tried"
elif printf '%s' "$out" | grep -q '^100%' && grep -q '^lock' "$work/disk.log" 2>/dev/null \
    && printf '%s' "$out" | grep -q '"state":"BLOCKED"'; then
    report 0 "fill the disk under the store" "disk 100% full; the day ran out and the device locked"
else
    report 1 "fill the disk under the store" "$(first_line "$out")"
fi

# 10. The child unlocks their session while out of time (with their password, say): a real
# run (logind metering and locking, the default) against a stand-in logind on a private
# bus, which plays the desktop.
standin_bin="$BIN_DIR/examples/logind_standin"
if [ -x "$standin_bin" ] && command -v dbus-daemon >/dev/null 2>&1; then
    cp "$standin_bin" "$work/bin/"
    coproc STANDIN { "$work/bin/logind_standin"; }
    standin_pid=$STANDIN_PID
    read -r -t 10 -u "${STANDIN[0]}" bus
    standin() {
        echo "$1" >&"${STANDIN[1]}"
        read -r -t 10 -u "${STANDIN[0]}" answer
        printf '%s' "$answer"
    }
    # wait_locked ID: true once the stand-in reports the session locked (10 s at most).
    wait_locked() {
        for _ in $(seq 1 100); do
            case "$(standin "show $1")" in locked=true*) return 0 ;; esac
            sleep 0.1
        done
        return 1
    }
    printf 'time_zone = "UTC"\ndaily_minutes = 0\ngrace_minutes = 0\n' >"$work/none.toml"
    DBUS_SYSTEM_BUS_ADDRESS="$bus" "$work/bin/child-agent" run --no-mdns --data-dir "$work/real" --policy "$work/none.toml" \
        --child-user nobody --legacy-mode off 2>"$work/real.log" &
    real_pid=$!
    if wait_locked c1; then
        slowest=0
        relocked=yes
        for _ in 1 2 3; do
            standin "unlock c1" >/dev/null
            started=$(date +%s%N)
            wait_locked c1 || relocked=no
            took=$((($(date +%s%N) - started) / 1000000))
            [ "$took" -gt "$slowest" ] && slowest=$took
        done
        if [ "$relocked" = yes ] && [ "$slowest" -lt 5000 ]; then
            report 0 "unlock the session while out of time, 3 times" "locked again each time, within $slowest ms"
        else
            report 1 "unlock the session while out of time, 3 times" "relocked: $relocked, slowest $slowest ms"
        fi
        case "$(standin "show p1")" in
            *lock_calls=0) report 0 "the parent's session" "left alone" ;;
            *) report 1 "the parent's session" "$(standin "show p1")" ;;
        esac
    else
        report 1 "a real run locks the child's session by default" "not locked within 10 s: $(tail -1 "$work/real.log")"
    fi
    kill "$real_pid" 2>/dev/null
    wait "$real_pid" 2>/dev/null
    eval "exec ${STANDIN[1]}>&-"
    wait "$standin_pid" 2>/dev/null
else
    echo "note    no $standin_bin or no dbus-daemon: the logind attacks were not tried here (cargo build --release -p child-agent --example logind_standin)"
fi

# 11. A real run that could lock nothing does not start quietly.
out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus agent run --no-mdns --data-dir "$work/other" \
    --child-user nobody --legacy-mode off 2>&1)
code=$?
if [ "$code" != 0 ] && printf '%s' "$out" | grep -q -- "--no-enforce"; then
    report 0 "a real run with no logind and no hook" "refused to start"
else
    report 1 "a real run with no logind and no hook" "exit $code"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
