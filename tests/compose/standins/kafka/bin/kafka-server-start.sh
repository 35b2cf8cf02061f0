#!/bin/sh
KAFKA_LOG4J_CONFIG=/etc/kafka/docker/log4j2.properties exec /opt/kafka/bin/kafka-run-class.sh kafka.Kafka "$@"
