#!/bin/sh
# The distribution's launcher, cut to what the stand-in needs: Java, the jars,
# a log configuration (the tools' unless the caller names one).
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} ${KAFKA_OPTS:-} \
  "-Dlog4j2.configurationFile=${KAFKA_LOG4J_CONFIG:-/etc/kafka/docker/tools-log4j2.properties}" \
  -cp '/opt/kafka/libs/*' "$@"
