#!/usr/bin/env bash
# prebuildify calls "node-gyp rebuild ..."; this stand-in builds with cmake-js instead (prebuildify has no
# cmake-js backend) and leaves the addon where prebuildify looks: build/Release/tensornormal.node.
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js rebuild
