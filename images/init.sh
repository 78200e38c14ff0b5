#!/bin/busybox sh
# /init of kiln's ephemeral initramfs: bring the network up by DHCP, post a hardware summary to the
# region's metadata URL, power off. Everything prints to the console (console=ttyS0 on the kernel
# command line) with the prefix "kiln-init:" so the e2e test and a person at the serial console can
# follow it. Kernel command line parameters are documented in images/README.md.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /etc /root
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "kiln-init: $*"; }

finish() {
	# A kernel panics when init exits, so every path ends here. kiln.shell=1 keeps a shell for
	# debugging by hand instead of powering off.
	if [ "$KILN_SHELL" = 1 ]; then
		say "kiln.shell=1: starting a shell instead of powering off"
		exec setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
	fi
	say "powering off"
	sync
	poweroff -f
	# poweroff -f returns only if the machine could not power off (no ACPI): halt the CPU instead.
	halt -f
	while :; do sleep 3600; done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
say "started (kernel $(uname -r), $(uname -m))"

# --- kernel command line ---------------------------------------------------------------------
METADATA_URL=
TOKEN=
BOOTIF=
KILN_SHELL=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	kiln.metadata_url=*) METADATA_URL="${arg#kiln.metadata_url=}" ;;
	kiln.token=*) TOKEN="${arg#kiln.token=}" ;;
	kiln.shell=*) KILN_SHELL="${arg#kiln.shell=}" ;;
	BOOTIF=*) BOOTIF="${arg#BOOTIF=}" ;;
	esac
done
# iPXE and pxelinux pass BOOTIF=01-aa-bb-cc-dd-ee-ff (hardware type 01 = ethernet, then the MAC).
BOOT_MAC=
case "$BOOTIF" in
01-??-??-??-??-??-??) BOOT_MAC=$(echo "${BOOTIF#01-}" | tr 'A-F-' 'a-f:') ;;
esac
[ -n "$BOOT_MAC" ] && say "boot interface $BOOT_MAC"

# --- NIC and disk drivers --------------------------------------------------------------------
# The Debian kernel has its NIC drivers as modules; load them in dependency order (computed at
# build time with modprobe --show-depends). A driver without its hardware loads and idles.
while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/$mod" 2>/dev/null || say "module $mod did not load"
done </lib/modules/load-order
say "drivers loaded"

is_ether() {
	[ "$(cat "/sys/class/net/$1/type" 2>/dev/null)" = 1 ] && [ "$1" != lo ] && [ -e "/sys/class/net/$1/device" ]
}

ethers() {
	for p in /sys/class/net/*; do
		n=${p##*/}
		is_ether "$n" && echo "$n"
	done
}

# PCI probing finishes inside insmod, but give slow devices a few seconds to show up.
i=0
while [ -z "$(ethers)" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
IFACES=$(ethers)
if [ -z "$IFACES" ]; then
	say "ERROR: no ethernet interface found"
	finish
fi

# --- DHCP on every ethernet interface, in parallel ---------------------------------------------
ip link set lo up
for n in $IFACES; do
	ip link set "$n" up
done
say "DHCP on $(echo $IFACES)"
for n in $IFACES; do
	udhcpc -i "$n" -f -q -n -t 5 -T 2 -s /etc/udhcpc.script >"/tmp/udhcpc.$n.log" 2>&1 &
done
wait
CONFIGURED=
for n in $IFACES; do
	addr=$(ip -4 -o addr show dev "$n" | awk '{print $4}' | head -n 1)
	if [ -n "$addr" ]; then
		say "$n $(cat "/sys/class/net/$n/address") got $addr"
		CONFIGURED="$CONFIGURED $n"
	else
		say "$n got no DHCP lease"
	fi
done
if [ -z "$CONFIGURED" ]; then
	say "ERROR: no interface got a DHCP lease"
	finish
fi

# --- hardware summary as JSON ------------------------------------------------------------------
# JSON string: backslashes and quotes escaped, control characters dropped.
js() {
	printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}
num() {
	case "$1" in '' | *[!0-9]*) echo 0 ;; *) echo "$1" ;; esac
}
readf() { cat "$1" 2>/dev/null | head -n 1; }

MACHINE=$(uname -m)
case "$MACHINE" in
x86_64) ARCH=amd64 ;;
aarch64) ARCH=arm64 ;;
i?86) ARCH=i386 ;;
*) ARCH=$MACHINE ;;
esac
CPU_COUNT=$(grep -c '^processor' /proc/cpuinfo)
CPU_MODEL=$(grep -m 1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
FIRMWARE=bios
[ -d /sys/firmware/efi ] && FIRMWARE=uefi

out=/tmp/hardware.json
{
	printf '{"schema":1,"arch":%s,"machine":%s,"firmware":%s,' "$(js "$ARCH")" "$(js "$MACHINE")" "$(js "$FIRMWARE")"
	printf '"kernel":%s,' "$(js "$(uname -r)")"
	if [ -n "$BOOT_MAC" ]; then printf '"boot_mac":%s,' "$(js "$BOOT_MAC")"; else printf '"boot_mac":null,'; fi
	printf '"cpu":{"count":%s,"model":%s},' "$(num "$CPU_COUNT")" "$(js "$CPU_MODEL")"
	printf '"memory_bytes":%s,' "$(($(num "$MEM_KB") * 1024))"
	printf '"interfaces":['
	sep=
	for n in $IFACES; do
		addr=$(ip -4 -o addr show dev "$n" | awk '{print $4}' | head -n 1)
		printf '%s{"name":%s,"mac":%s,"ipv4":%s,"driver":%s}' "$sep" "$(js "$n")" \
			"$(js "$(readf "/sys/class/net/$n/address")")" "$(js "$addr")" \
			"$(js "$(basename "$(readlink "/sys/class/net/$n/device/driver" 2>/dev/null)" 2>/dev/null)")"
		sep=,
	done
	printf '],"disks":['
	sep=
	for d in /sys/block/*; do
		[ -e "$d" ] || continue
		name=${d##*/}
		case "$name" in loop* | ram* | zram* | dm-* | md* | sr* | fd*) continue ;; esac
		sectors=$(num "$(readf "$d/size")")
		printf '%s{"name":%s,"size_bytes":%s,"model":%s,"rotational":%s}' "$sep" "$(js "$name")" \
			"$((sectors * 512))" "$(js "$(readf "$d/device/model" | sed 's/ *$//')")" \
			"$([ "$(readf "$d/queue/rotational")" = 1 ] && echo true || echo false)"
		sep=,
	done
	printf '],"dmi":{"sys_vendor":%s,"product_name":%s,"product_serial":%s,"product_uuid":%s}}' \
		"$(js "$(readf /sys/class/dmi/id/sys_vendor)")" "$(js "$(readf /sys/class/dmi/id/product_name)")" \
		"$(js "$(readf /sys/class/dmi/id/product_serial)")" "$(js "$(readf /sys/class/dmi/id/product_uuid)")"
} >"$out"
say "hardware: $ARCH, $CPU_COUNT cpu, $((MEM_KB / 1024)) MiB, interfaces:$(for n in $IFACES; do printf ' %s' "$(readf "/sys/class/net/$n/address")"; done)"

# --- report to the region ----------------------------------------------------------------------
if [ -z "$METADATA_URL" ]; then
	say "ERROR: no kiln.metadata_url= on the kernel command line; nothing to report to"
	cat "$out"
	echo
	finish
fi
# The URL may carry a token itself; the header carries kiln.token= when given. Never print either.
posted=0
for attempt in 1 2 3 4 5; do
	# busybox-static 1.35's wget segfaults with -T: bound it with timeout(1) instead.
	if [ -n "$TOKEN" ]; then
		timeout 30 wget -q -O /tmp/response --header "Content-Type: application/json" \
			--header "Authorization: Bearer $TOKEN" --post-file "$out" "$METADATA_URL" 2>/tmp/wget.err
	else
		timeout 30 wget -q -O /tmp/response --header "Content-Type: application/json" \
			--post-file "$out" "$METADATA_URL" 2>/tmp/wget.err
	fi
	if [ $? -eq 0 ]; then
		posted=1
		break
	fi
	say "report attempt $attempt failed: $(head -c 200 /tmp/wget.err | tr '\n' ' ')"
	sleep "$attempt"
done
if [ $posted = 1 ]; then
	say "posted hardware summary"
else
	say "ERROR: could not post the hardware summary"
fi
finish
