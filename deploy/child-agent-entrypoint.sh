#!/bin/sh
# A child agent in a container (tests and demos; a real agent runs on the child's
# machine under systemd, see docs/deploy.md): enroll once, then run.
#
#   PAIRING_CODE   a device's one-time code (`household invite device --child NAME`); used
#                  only while CHILD_AGENT_DATA_DIR holds no enrollment.json yet
#   PAIRING_HUB    the hub's HOST:PORT for enrolling; without it the hub is found by mDNS
#
# The arguments go to `child-agent run`. Without PAIRING_CODE an agent that is not
# enrolled runs on its own, with its own policy; set the code and start the container
# again to enroll it.
set -eu

data_dir=${CHILD_AGENT_DATA_DIR:?"set CHILD_AGENT_DATA_DIR to the data directory"}

if [ -e "$data_dir/enrollment.json" ]; then
    echo "child-agent-entrypoint: already enrolled ($data_dir/enrollment.json)" >&2
elif [ -n "${PAIRING_CODE:-}" ]; then
    child-agent enroll "$PAIRING_CODE" --data-dir "$data_dir" ${PAIRING_HUB:+--hub "$PAIRING_HUB"}
fi

exec child-agent run --data-dir "$data_dir" "$@"
