#!/usr/bin/env bash
# Provisions mongo-java-server (an in-memory MongoDB wire-protocol server, run on Java 17) for the
# integration tests and the embedded runtime where no mongod is installed.
#
# Idempotent: once test/support/.cache/mongo-java-server-<version>/.complete exists it only checks
# Java. Needs Java 17+ and Maven, and reaches Maven Central the first time; fails loudly otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="$(sed -n 's:.*<mongo-java-server.version>\(.*\)</mongo-java-server.version>.*:\1:p' test/support/mongo-java-server/pom.xml)"
CACHE="test/support/.cache/mongo-java-server-${VERSION}"

fail() { printf 'provision-mongo: %s\n' "$*" >&2; exit 1; }

command -v java >/dev/null 2>&1 || fail "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
JAVA_MAJOR="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
[ "${JAVA_MAJOR:-0}" -ge 17 ] || fail "Java ${JAVA_MAJOR:-?} found; the single-file launcher needs Java 17+"

if [ -f "${CACHE}/.complete" ]; then
  echo "mongo-java-server ${VERSION}: cached in ${CACHE}"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || fail "mvn not found: install Maven (apt-get install maven), or set TEKTREE_MONGO_JAVA_SERVER_CP to a classpath holding mongo-java-server ${VERSION} and its dependencies"

TMP="${CACHE}.tmp.$$"
trap 'rm -rf "${TMP}"' EXIT
rm -rf "${TMP}"
mkdir -p "${TMP}"
if ! mvn -q -B -Dstyle.color=never -f test/support/mongo-java-server/pom.xml dependency:copy-dependencies \
    -DoutputDirectory="$(pwd)/${TMP}" -DincludeScope=runtime; then
  fail "Maven could not resolve de.bwaldvogel:mongo-java-server:${VERSION} (is Maven Central reachable? proxy settings go in ~/.m2/settings.xml)"
fi
ls "${TMP}"/mongo-java-server-memory-backend-*.jar >/dev/null 2>&1 || fail "Maven finished but the memory backend jar is missing in ${TMP}"
# Move into place, then mark complete last, so a half-finished run never counts as provisioned.
rm -rf "${CACHE}"
mv "${TMP}" "${CACHE}"
echo "${VERSION}" > "${CACHE}/.complete"
echo "mongo-java-server ${VERSION}: $(ls "${CACHE}"/*.jar | wc -l) jars in ${CACHE}"
