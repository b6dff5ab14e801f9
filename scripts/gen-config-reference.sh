#!/bin/sh
# Regenerates the reference block of docs/config.md (between the BEGIN/END
# GENERATED REFERENCE markers) from `outpostd --config-reference`, the
# schema rows of each section.  spec/c/test_config.c fails while the two
# differ.   scripts/gen-config-reference.sh [OUTPOSTD]
set -eu
cd "$(dirname "$0")/.."
OUTPOSTD=${1:-build/outpostd}
ref=$(mktemp)
trap 'rm -f "$ref" docs/config.md.tmp' EXIT
"$OUTPOSTD" --config-reference > "$ref"
awk -v ref="$ref" '
    /<!-- BEGIN GENERATED REFERENCE -->/ { print; print ""; while ((getline l < ref) > 0) print l; print ""; skip = 1; next }
    /<!-- END GENERATED REFERENCE -->/ { skip = 0 }
    !skip' docs/config.md > docs/config.md.tmp
mv docs/config.md.tmp docs/config.md
