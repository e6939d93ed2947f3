#!/bin/bash
# Issue 20's "done when", by hand: a JIT request initiated through the CLI opens a real
# TCP path (source netns -> jump netns running stewardd -> target netns) that closes by
# itself at its end time with the daemon SIGKILLed. Prints 200 while open, 000 when shut.
# As root; needs nft, ip, curl, python3 (.ci/install-deps); run `cargo build` first
# (STEWARD_BIN=DIR picks other binaries).
set -u
B=${STEWARD_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/debug}
D=$(mktemp -d /tmp/steward-jitdemo-XXXXXX)
for n in dsrc djmp dtgt; do ip netns del $n 2>/dev/null; ip netns add $n; ip -n $n link set lo up; done
ip -n dsrc link add sv type veth peer name j1 netns djmp
ip -n dtgt link add tv type veth peer name j2 netns djmp
ip -n dsrc addr add 10.88.1.2/24 dev sv; ip -n dsrc link set sv up; ip -n dsrc route add default via 10.88.1.1
ip -n dtgt addr add 10.88.2.2/24 dev tv; ip -n dtgt link set tv up; ip -n dtgt route add default via 10.88.2.1
ip -n djmp addr add 10.88.1.1/24 dev j1; ip -n djmp addr add 10.88.2.1/24 dev j2; ip -n djmp link set j1 up; ip -n djmp link set j2 up
ip netns exec djmp sysctl -qw net.ipv4.ip_forward=1
ip netns exec dtgt python3 -m http.server 8022 --bind 10.88.2.2 >/dev/null 2>&1 &
LPID=$!
VM=/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1
cat > $D/steward.toml <<TOML
[daemon]
socket = "$D/sock/steward.sock"
data_dir = "$D/data"
log_dir = "$D/logs"
[jit]
firewall = "nftables"
[jit.targets]
"$VM" = "10.88.2.2"
[[tenant]]
id = "contoso"
name = "Contoso"
[[grant]]
user = "root"
tenant = "*"
role = "tenant-admin"
TOML
ip netns exec djmp $B/stewardd --config $D/steward.toml 2>$D/stderr & DPID=$!
sleep 2
export STEWARD_SOCKET=$D/sock/steward.sock STEWARD_TENANT=contoso
probe() { ip netns exec dsrc curl -s -o /dev/null -m 1 -w '%{http_code}' http://10.88.2.2:8022/ || true; }
echo "{\"properties\":{\"virtualMachines\":[{\"id\":\"$VM\",\"ports\":[{\"number\":8022,\"protocol\":\"TCP\",\"allowedSourceAddressPrefix\":\"10.88.1.0/24\",\"maxRequestAccessDuration\":\"PT1H\"}]}]}}" | $B/steward jit put default - >/dev/null
echo "before initiate: $(probe)"
END=$(date -u -d '+8 seconds' +%Y-%m-%dT%H:%M:%SZ)
echo "{\"virtualMachines\":[{\"id\":\"$VM\",\"ports\":[{\"number\":8022,\"endTimeUtc\":\"$END\",\"allowedSourceAddressPrefix\":\"10.88.1.2\"}]}]}" | $B/steward jit initiate default - -o json | head -c 300; echo
echo "after initiate (ends $END): $(probe)"
ip netns exec djmp nft list set inet steward allow4 | grep elements
kill -9 $DPID; wait $DPID 2>/dev/null
echo "daemon SIGKILLed at $(date -u +%T); still open: $(probe)"
sleep 9
echo "at $(date -u +%T), after the end with the daemon dead: $(probe)"
ip netns exec djmp nft list set inet steward allow4 | grep -c elements
kill $LPID
for n in dsrc djmp dtgt; do ip netns del $n; done
rm -rf "$D"
