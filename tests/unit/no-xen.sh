#!/bin/bash
# SPDX-License-Identifier: ISC
# Stands in for tests/unit/test_xen_platform and test_rendezvous_xen when
# configure found no Xen headers (libxen-dev): reported as skipped, not as
# passed.
NAME="test_xen_platform, test_rendezvous_xen"
# shellcheck source=tests/skip.sh
. "$(dirname "$0")/../skip.sh"
skip "configured without the Xen headers (apt-get install libxen-dev, re-run configure)"
