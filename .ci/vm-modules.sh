#!/usr/bin/env bash
# The kernel modules the network tests need inside a VM (veth, the clsact
# qdisc, cls_bpf), for one Debian kernel package: prints a directory to
# bind-mount on the guest's /lib/modules (.ci/in-vm.sh does it).
#   .ci/vm-modules.sh SUITE PKG     e.g. bullseye linux-image-5.10.0-46-amd64
# SUITE "" is the machine's own (bookworm); others come through a private
# apt state (.ci/apt-suite.sh). Only the modules named below and what they depend on
# are kept.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SUITE PKG" >&2; exit 2; }
suite=$1 pkg=$2
WANT="veth sch_ingress cls_bpf act_bpf"
cache=${LBN_CACHE:-/tmp/lbn-cache}
out=$cache/modules/$pkg
if [ -e "$out/done" ]; then echo "$out/lib/modules"; exit 0; fi

o=$("$(dirname "$0")/apt-suite.sh" "$suite")

tmp=$out.tmp
rm -rf "$tmp" "$out"; mkdir -p "$tmp/debs"
chmod 777 "$tmp/debs"   # apt downloads as _apt
# Newer kernels split the image into linux-binary-* and linux-modules-*.
parts=$(apt-cache $o depends "$pkg" 2>/dev/null | awk '$1 ~ /Depends:/ && $2 ~ /^linux-(binary|modules)-[0-9]/ {print $2}' | sort -u)
( cd "$tmp/debs" && apt-get $o download -q "$pkg" $parts >/dev/null )
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done
md=$tmp/root/lib/modules
[ -d "$md" ] || md=$tmp/root/usr/lib/modules
kver=$(ls "$md")
depmod -b "$(dirname "$(dirname "$md")")" "$kver" 2>/dev/null || depmod -b "$tmp/root" "$kver"
# The closure of WANT in modules.dep ("path: dep dep ..."), by module name.
need=""
for m in $WANT; do
  line=$(awk -F: -v n="$m" '{b=$1; sub(/.*\//,"",b); sub(/\.ko.*/,"",b); gsub(/-/,"_",b); if (b==n) {print; exit}}' "$md/$kver/modules.dep")
  [ -n "$line" ] || continue   # built in (or absent): modprobe says which
  need="$need ${line%%:*} ${line#*:}"
done
mkdir -p "$out/lib/modules/$kver"
for m in $need; do
  mkdir -p "$out/lib/modules/$kver/$(dirname "$m")"
  cp "$md/$kver/$m" "$out/lib/modules/$kver/$m"
done
cp "$md/$kver"/modules.builtin* "$md/$kver"/modules.order "$out/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$out" "$kver"
rm -rf "$tmp"
touch "$out/done"
echo "$out/lib/modules"
