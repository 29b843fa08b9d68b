#!/bin/sh
# Builds ipsec-masqd against musl (Debian's musl-tools) as far as this host
# allows, the nearest to an OpenWrt build without its SDK:
#
#   contrib/openwrt/musl-build.sh [BUILDDIR]     (default build/musl)
#
# 1. configure with CC=musl-gcc, --without-systemd --without-check (as the
#    OpenWrt recipe does); the Linux UAPI headers and the host's headers of
#    libmnl, libnetfilter_queue, libnfnetlink, libnftnl, libconfig and OpenSSL are made
#    visible through an include overlay (musl-gcc sees only musl's headers);
# 2. the engine, ipsec-masqctl and ipsec-masqd-replay build and link against
#    musl (ELF interpreter /lib/ld-musl-*), and the replay tool plays its
#    built-in story here with no outcome differing from the rules;
# 3. every object of the daemon compiles against musl; its link needs musl
#    builds of those libraries, which Debian does not ship: with
#    MUSL_LIBDIR=DIR (DIR/lib*.a or .so built with musl-gcc) the daemon links
#    too, otherwise the script reports which libraries the link lacks and
#    stops there, successfully (that is as far as the host goes).
# Exit 0 when everything reachable built and ran; 1 on any other failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
b=${1:-build/musl}
command -v musl-gcc >/dev/null 2>&1 || { echo "musl-build: musl-gcc missing (apt-get install musl-tools)" >&2; exit 1; }
[ -x configure ] || autoreconf -fi || exit 1
rm -rf "$b" && mkdir -p "$b/inc/openssl" || exit 1
b=$(cd "$b" && pwd)
inc=$b/inc
multi=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for d in linux asm-generic libmnl libnetfilter_queue libnfnetlink libnftnl; do
	[ -e "/usr/include/$d" ] && ln -s "/usr/include/$d" "$inc/$d"
done
ln -s "/usr/include/$multi/asm" "$inc/asm"
[ -e /usr/include/libconfig.h ] && ln -s /usr/include/libconfig.h "$inc/libconfig.h"
# OpenSSL splits its headers between /usr/include and the multiarch dir
for f in /usr/include/openssl/* "/usr/include/$multi/openssl/"*; do
	[ -e "$f" ] && ln -sf "$f" "$inc/openssl/"
done
ldflags=
[ -n "${MUSL_LIBDIR:-}" ] && ldflags="-L$MUSL_LIBDIR"

cd "$b" || exit 1
"$top/configure" -q --enable-werror --without-systemd --without-check \
	CC=musl-gcc CFLAGS="-O2 -g" CPPFLAGS="-isystem $inc" LDFLAGS="$ldflags" ||
	{ echo "musl-build: configure failed"; exit 1; }
fail=0
make -s -j2 libengine.a ipsec-masqctl ipsec-masqd-replay > make-tools.log 2>&1 ||
	{ cat make-tools.log; echo "musl-build: the engine or the tools do not build against musl"; exit 1; }
for p in ipsec-masqctl ipsec-masqd-replay; do
	interp=$(readelf -l "$p" 2>/dev/null | sed -n 's/.*interpreter: \(.*\)]/\1/p')
	case $interp in
	*ld-musl*) echo "musl-build: $p linked against musl ($interp)" ;;
	*) echo "musl-build: $p has interpreter '$interp', not musl's"; fail=1 ;;
	esac
done
if ./ipsec-masqd-replay -q > replay.out 2>&1; then
	echo "musl-build: ipsec-masqd-replay (musl) ran the built-in story: $(tail -n 1 replay.out)"
else
	cat replay.out; echo "musl-build: the musl replay tool failed its built-in story"; fail=1
fi
./ipsec-masqctl --version > /dev/null || { echo "musl-build: musl ipsec-masqctl --version failed"; fail=1; }

# The daemon: make links only after every object compiled, so a link error
# with no compiler error means all of the daemon compiled against musl.
if make -s -j2 ipsec-masqd > make-daemon.log 2>&1; then
	echo "musl-build: ipsec-masqd linked against musl ($(readelf -l ipsec-masqd | sed -n 's/.*interpreter: \(.*\)]/\1/p'))"
	./ipsec-masqd --version || fail=1
elif grep -q 'error:' make-daemon.log && ! grep -q 'ld returned' make-daemon.log; then
	cat make-daemon.log; echo "musl-build: a daemon source does not compile against musl"; fail=1
else
	missing=$(sed -n 's/.*cannot find -l\([^:]*\).*/\1/p' make-daemon.log | sort -u | tr '\n' ' ')
	if [ -n "$missing" ]; then
		echo "musl-build: every daemon object compiled against musl; the link lacks musl builds of: $missing"
		echo "musl-build: (Debian ships them for glibc only; the OpenWrt SDK builds them, or set MUSL_LIBDIR)"
	else
		cat make-daemon.log; echo "musl-build: the daemon link failed for another reason"; fail=1
	fi
fi
exit $fail
