#!/bin/sh
# usage: tools/check_exports.sh [--macho] ARCHIVE EXPORTS_FILE
#
# Checks that the defined global symbols of ARCHIVE (a static library or an object) are
# exactly the names in EXPORTS_FILE (one per line, '#' starts a comment) plus skynet_error
# defined weak (nm type W or V). skynet links with -Wl,-E, so any other global we leave in
# the archive (a Rust mangled name, a bundled helper) can collide with a symbol of skynet
# or of a C module; a missing one breaks `require "skynet.socketdriver"` at run time.
# A strong skynet_error would clash with skynet's own definition, hence the weak check.
#
# Prints every missing and every extra symbol and exits 1 on any difference; on success
# prints one line "exports: N symbols, OK", N being the number of listed names.
# Exit status 2: bad usage, unreadable file, or nm failed.
#
# NM names the nm to run, with any flags (default: nm); it must read ARCHIVE's format.
# --macho: ARCHIVE is Mach-O. Names lose their leading underscore, and weak definitions are
#   read from `nm -m` ("weak external"), since nm's one-letter type shows them as T there.
#   ARCHIVE may also be a dylib (check-platforms links one where Apple's ld -r cannot run).

set -eu

macho=0
while [ "$#" -gt 0 ]; do
	case $1 in
	--macho) macho=1 ;;
	-*) set -- bad usage ;;
	*) break ;;
	esac
	shift
done
if [ "$#" -ne 2 ]; then
	echo "usage: $0 [--macho] ARCHIVE EXPORTS_FILE" >&2
	exit 2
fi
nm=${NM:-nm}
archive=$1
exports=$2
for f in "$archive" "$exports"; do
	if [ ! -r "$f" ]; then
		echo "check_exports: cannot read $f" >&2
		exit 2
	fi
done

# comm needs byte order, whatever the caller's locale.
LC_ALL=C
export LC_ALL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The expected names: comments and blank lines dropped, surrounding blanks trimmed.
sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$exports" \
	| sort > "$tmp/wanted.all"
sort -u "$tmp/wanted.all" > "$tmp/wanted"
status=0
if ! cmp -s "$tmp/wanted.all" "$tmp/wanted"; then
	uniq -d "$tmp/wanted.all" | sed 's/^/listed twice in exports file: /'
	status=1
fi
if grep -qx 'skynet_error' "$tmp/wanted"; then
	echo "exports file lists skynet_error: it is checked separately, as a weak symbol"
	status=1
fi

# "NAME TYPE" lines from nm's output. ELF: "ADDRESS TYPE NAME"; archive member headers
# ("foo.o:") and blank lines have fewer fields. Mach-O (-m): "ADDRESS (SEG,SECT) [weak ]external
# [attributes] _NAME", the name last. A name strongly defined by two members is reported too: a
# link that pulls both members fails with a multiple-definition error.
if [ "$macho" -eq 1 ]; then
	nm_flags="-g -m --defined-only"
else
	nm_flags="-g --defined-only"
fi
# shellcheck disable=SC2086 # NM may carry flags
if ! $nm $nm_flags "$archive" > "$tmp/nm.out" 2> "$tmp/nm.err"; then
	echo "check_exports: $nm failed on $archive:" >&2
	cat "$tmp/nm.err" >&2
	exit 2
fi
if [ "$macho" -eq 1 ]; then
	awk '/\) (weak )?external / && !/non-external/ {
		name = $NF; sub(/^_/, "", name)
		print name, (/\) weak external / ? "W" : "T")
	}' "$tmp/nm.out"
else
	awk 'NF >= 3 && length($(NF - 1)) == 1 { print $NF, $(NF - 1) }' "$tmp/nm.out"
fi | sort > "$tmp/defined.typed"
awk '$2 != "W" && $2 != "V" { print $1 }' "$tmp/defined.typed" | uniq -d > "$tmp/dups"
if [ -s "$tmp/dups" ]; then
	sed 's/^/defined more than once: /' "$tmp/dups"
	status=1
fi

# skynet_error: present, and only as weak definitions.
weak_ok=$(awk '$1 == "skynet_error" && ($2 == "W" || $2 == "V")' "$tmp/defined.typed" | wc -l)
other=$(awk '$1 == "skynet_error" && $2 != "W" && $2 != "V" { print $2 }' "$tmp/defined.typed")
if [ -n "$other" ]; then
	echo "skynet_error is defined but not weak (nm type $(echo $other)); skynet's own would clash"
	status=1
elif [ "$weak_ok" -eq 0 ]; then
	echo "missing: skynet_error (weak fallback, nm type W or V)"
	status=1
fi

grep -v '^skynet_error ' "$tmp/defined.typed" > "$tmp/rest.typed" || true
cut -d' ' -f1 "$tmp/rest.typed" | sort -u > "$tmp/defined"

comm -23 "$tmp/wanted" "$tmp/defined" > "$tmp/missing"
comm -13 "$tmp/wanted" "$tmp/defined" > "$tmp/extra"
if [ -s "$tmp/missing" ]; then
	sed 's/^/missing: /' "$tmp/missing"
	status=1
fi
if [ -s "$tmp/extra" ]; then
	# Show the nm type too: it tells a stray function (T) from data (D, B, R).
	awk 'NR == FNR { extra[$1] = 1; next } ($1 in extra) { print "extra: " $1 " (nm type " $2 ")" }' \
		"$tmp/extra" "$tmp/rest.typed" | sort -u
	status=1
fi

if [ "$status" -ne 0 ]; then
	echo "exports: FAILED (see above)"
	exit 1
fi
echo "exports: $(wc -l < "$tmp/wanted") symbols, OK"
