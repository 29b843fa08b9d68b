#!/bin/sh
# make check runs every test through this (LOG_COMPILER, SH_LOG_COMPILER):
#   tests/lib/run-test.sh PROGRAM [ARGS...]
# Exit status 77 is automake's "skipped", which the summary counts apart
# from failures but which a CI log reading "all tests passed" would hide.
# With IPSEC_MASQD_REQUIRE_ALL=1 (scripts/test.sh sets it in the build that
# runs the namespace tests) a skip is a failure: every test must really run.
# Otherwise the status is passed through unchanged.
"$@"
rc=$?
for test_file; do :; done   # the last argument: the test itself
if [ "$rc" = 77 ] && [ "${IPSEC_MASQD_REQUIRE_ALL:-0}" = 1 ]; then
	echo "FAIL: $test_file skipped (exit 77) under IPSEC_MASQD_REQUIRE_ALL=1, where every test must run"
	exit 1
fi
exit "$rc"
