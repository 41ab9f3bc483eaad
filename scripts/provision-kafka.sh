#!/usr/bin/env bash
# Provisions an Apache Kafka broker (its jars, from Maven Central) for the integration tests, the
# benchmarks and `tektree up --bus kafka`: no Kafka tarball can be fetched on CI's machines, and the
# broker is a plain Java program once its runtime classpath is there (src/embedded/kafka-server.ts
# formats and starts it).
#
# Idempotent: once test/support/.cache/kafka-<version>/.complete exists it only checks Java.
# Needs Java 17+ and Maven, and reaches Maven Central the first time (~15 s, 43 MB); fails loudly otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

POM=test/support/kafka/pom.xml
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "${POM}")"
CACHE="test/support/.cache/kafka-${VERSION}"

fail() { printf 'provision-kafka: %s\n' "$*" >&2; exit 1; }

command -v java >/dev/null 2>&1 || fail "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
JAVA_MAJOR="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
[ "${JAVA_MAJOR:-0}" -ge 17 ] || fail "Java ${JAVA_MAJOR:-?} found; Kafka ${VERSION} needs Java 17+"

if [ -f "${CACHE}/.complete" ]; then
  echo "kafka ${VERSION}: cached in ${CACHE}"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || fail "mvn not found: install Maven (apt-get install maven), or set TEKTREE_KAFKA_CP to a classpath holding kafka_2.13 ${VERSION} and its dependencies"

TMP="${CACHE}.tmp.$$"
trap 'rm -rf "${TMP}"' EXIT
rm -rf "${TMP}"
mkdir -p "${TMP}"
if ! mvn -q -B -Dstyle.color=never -f "${POM}" dependency:copy-dependencies \
    -DoutputDirectory="$(pwd)/${TMP}" -DincludeScope=runtime; then
  fail "Maven could not resolve org.apache.kafka:kafka_2.13:${VERSION} (is Maven Central reachable? proxy settings go in ~/.m2/settings.xml)"
fi
ls "${TMP}/kafka_2.13-${VERSION}.jar" >/dev/null 2>&1 || fail "Maven finished but kafka_2.13-${VERSION}.jar is missing in ${TMP}"
ls "${TMP}"/log4j-slf4j*-impl-*.jar >/dev/null 2>&1 || fail "Maven finished but no log4j SLF4J binding is in ${TMP}: the broker would print nothing"
# Move into place, then mark complete last, so a half-finished run never counts as provisioned.
rm -rf "${CACHE}"
mv "${TMP}" "${CACHE}"
echo "${VERSION}" > "${CACHE}/.complete"
echo "kafka ${VERSION}: $(ls "${CACHE}"/*.jar | wc -l) jars in ${CACHE}"
