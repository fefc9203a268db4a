#!/usr/bin/env bash
# Static checks of the Bicep in infra/ with checkov (offline). Exits non-zero on any failed check.
#
#   infra/check.sh                      # uses `checkov` from PATH
#   CHECKOV=/tmp/checkov-venv/bin/checkov infra/check.sh
#
# Install checkov (3.3.x) into a throwaway venv if you have none:
#   python3.13 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov
#
# Skips are justified in-line inside the resource blocks of infra/*.bicep
# (`// checkov:skip=CKV_AZURE_xx: reason`); checkov reports them as "Skipped checks".
# Checkov's Bicep parser is also the only syntax check available without the Bicep CLI.
# After checkov, a few greps guard Flex Consumption refusals checkov has no check for.
set -euo pipefail

CHECKOV="${CHECKOV:-checkov}"

# run from the repository root: checkov is given the relative path "infra"
cd "$(dirname "$0")/.."

if ! command -v "$CHECKOV" >/dev/null 2>&1; then
  echo "check.sh: checkov not found (CHECKOV=$CHECKOV); see the install line at the top of this file" >&2
  exit 2
fi

# checkov exits 1 when a check fails; --skip-download keeps it offline. It exits 0 when it
# cannot parse a file (it then checks nothing in it), so a parsing error fails here too.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
"$CHECKOV" -d infra --framework bicep --compact --quiet --skip-download 2>&1 | tee "$out" || status=$?

if grep -Eq 'Parsing errors: [1-9]' "$out"; then
  echo "check.sh: checkov could not parse a Bicep file (run without --quiet to see which)" >&2
  exit 1
fi
if ! grep -Eq 'Passed checks: [1-9]' "$out"; then
  echo "check.sh: checkov checked nothing; is infra/ empty?" >&2
  exit 1
fi

# Flex Consumption refusals checkov does not know about (issue 13; the Microsoft pages are cited in
# infra/main.bicep). Comment lines are ignored.
guard() { echo "check.sh: $1" >&2; status=1; }
code="$(grep -v '^[[:space:]]*//' infra/main.bicep)"
# siteConfig.ftpsState (and the other deprecated site properties) fail the deployment with 51021
if grep -Eq '^[[:space:]]*(ftpsState|alwaysOn|linuxFxVersion|use32BitWorkerProcess|vnetRouteAllEnabled|functionAppScaleLimit|preWarmedInstanceCount)[[:space:]]*:' <<<"$code"; then
  guard "main.bicep sets a site property Flex Consumption refuses (functions-app-settings#flex-consumption-plan-deprecations)"
fi
# maximumInstanceCount below 40 is refused in most regions
if ! grep -B3 -E '^param maximumInstanceCount ' <<<"$code" | grep -Eq '^@minValue\(([4-9][0-9]|[1-9][0-9]{2,})\)'; then
  guard "param maximumInstanceCount must carry @minValue(40) or more"
fi
# the storage firewall refuses /31 and /32: the rules must come from the normalised address list
if grep -Eq 'for [a-z]+ in operatorIpRanges: \{' <<<"$code"; then
  guard "IP rules built straight from operatorIpRanges: /31 and /32 must go through operatorAddresses"
fi
# a webhook URL needs its site's site_token, an HMAC Bicep cannot compute: no output may hand out a route URL
# (one pasted from it answers 403); `python -m devtools.site_check --webhook-urls` prints them (issue 22)
if grep -Eq '(services/rapid-meetings|\$\{siteBase\})/[a-z]' <<<"$code"; then
  guard "main.bicep builds a site route URL: it would lack its site_token (docs/operations.md)"
fi
exit "$status"
