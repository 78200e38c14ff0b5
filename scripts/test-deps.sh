#!/usr/bin/env bash
# pretest: the Debian packages the integration tests drive (real clients and servers, QEMU).
# As root, installs what is missing; otherwise prints the exact apt-get line and stops.
set -euo pipefail

# command → package that provides it
declare -A need=(
  [tftp]=tftp-hpa
  [atftp]=atftp
  [atftpd]=atftpd
  [curl]=curl
  [busybox]=busybox-static
  [dhclient]=isc-dhcp-client
  [kea-dhcp4]=kea-dhcp4-server
  [perfdhcp]=kea-admin
  [nginx]=nginx-light
  [qemu-system-x86_64]=qemu-system-x86
  [ip]=iproute2
  [iptables]=iptables
  [openssl]=openssl
  [cpio]=cpio
  [modprobe]=kmod
  [rdisc6]=ndisc6
)
# files → package
declare -A files=(
  [/usr/lib/ipxe/undionly.kpxe]=ipxe
  [/usr/lib/ipxe/ipxe.efi]=ipxe
  [/usr/lib/ipxe/qemu/pxe-virtio.rom]=ipxe-qemu
  [/usr/share/OVMF/OVMF_CODE.fd]=ovmf
  [/usr/lib/PXELINUX/lpxelinux.0]=pxelinux
  [/usr/lib/syslinux/modules/bios/ldlinux.c32]=syslinux-common
)

# images/build.mjs fetches the kernel behind the linux-image-amd64 metapackage with `apt-get
# download` (unpacked, never installed): apt's package lists must know it.
if ! apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-'; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
  else
    echo "apt does not know linux-image-amd64 (needed by images/build.mjs): run 'sudo apt-get update'" >&2
  fi
fi

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
for f in "${!files[@]}"; do
  [ -e "$f" ] || missing+=("${files[$f]}")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
  echo "The integration tests need Debian packages that are missing. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "pretest: installing ${missing[*]}" >&2
# Packages like atftpd, nginx and kea would start their services on install and take the ports the
# tests use: keep them stopped.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$made_policy" = 1 ] && rm -f "$policy"
exit 0
