// sarama-walkthrough: the Go walkthrough's producer and consumer group, as a
// foreign client for our tests. It reads the walkthrough's variables
// (EVENTHUBS_CONNECTION_STRING, EVENTHUBS_BROKER, EVENTHUBS_TOPIC,
// EVENTHUBS_CONSUMER_GROUPID), authenticates the way Event Hubs wants (SASL
// PLAIN over TLS, user $ConnectionString) and verifies the broker's certificate
// against KAFKA_SSL_CAFILE. It prints one JSON object per event on stdout.
//
//	sarama-walkthrough produce N    send N messages, key-<ts> / value-<ts>, as the walkthrough does
//	sarama-walkthrough consume      join the group and print every message until SIGTERM
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

var out = json.NewEncoder(os.Stdout)
var outLock sync.Mutex

func emit(event string, fields map[string]any) {
	fields["event"] = event
	outLock.Lock()
	defer outLock.Unlock()
	_ = out.Encode(fields)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func getEnv(name string) string {
	value := os.Getenv(name)
	if value == "" {
		fail("%s is not set", name)
	}
	return value
}

// getConfig is the walkthrough's, with the broker's certificate verified.
func getConfig() *sarama.Config {
	config := sarama.NewConfig()
	config.ClientID = "sarama-walkthrough"
	config.Net.DialTimeout = 10 * time.Second
	config.Net.SASL.Enable = true
	config.Net.SASL.User = "$ConnectionString"
	config.Net.SASL.Password = getEnv("EVENTHUBS_CONNECTION_STRING")
	config.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	config.Net.TLS.Enable = true
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(getEnv("KAFKA_SSL_CAFILE"))
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fail("cannot read a CA certificate from KAFKA_SSL_CAFILE: %v", err)
	}
	host := strings.Split(getEnv("EVENTHUBS_BROKER"), ":")[0]
	config.Net.TLS.Config = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	config.Version = sarama.V1_0_0_0
	// The walkthrough's consumer reads what was there before it joined.
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	return config
}

func produce(count int) {
	config := getConfig()
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	producer, err := sarama.NewSyncProducer([]string{getEnv("EVENTHUBS_BROKER")}, config)
	if err != nil {
		fail("Failed to start Sarama producer: %v", err)
	}
	defer producer.Close()
	topic := getEnv("EVENTHUBS_TOPIC")
	for i := 0; i < count; i++ {
		ts := time.Now().String()
		msg := &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder("key-" + ts),
			Value: sarama.StringEncoder("value-" + ts),
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			fail("Failed to send msg: %v", err)
		}
		emit("sent", map[string]any{"partition": partition, "offset": offset, "key": "key-" + ts, "value": "value-" + ts})
	}
}

type messageHandler struct{}

func (h messageHandler) Setup(s sarama.ConsumerGroupSession) error {
	emit("assigned", map[string]any{"claims": s.Claims()})
	return nil
}

func (h messageHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	emit("revoked", map[string]any{"claims": s.Claims()})
	return nil
}

func (h messageHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		emit("message", map[string]any{
			"partition": msg.Partition, "offset": msg.Offset,
			"key": string(msg.Key), "value": string(msg.Value),
		})
		s.MarkMessage(msg, "")
	}
	return nil
}

func consume() {
	config := getConfig()
	config.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	group, err := sarama.NewConsumerGroup([]string{getEnv("EVENTHUBS_BROKER")}, getEnv("EVENTHUBS_CONSUMER_GROUPID"), config)
	if err != nil {
		fail("error creating consumer group client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; cancel() }()
	go func() {
		for err := range group.Errors() {
			emit("error", map[string]any{"error": err.Error()})
		}
	}()
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{getEnv("EVENTHUBS_TOPIC")}, messageHandler{}); err != nil {
			emit("error", map[string]any{"error": err.Error()})
			time.Sleep(time.Second)
		}
	}
	if err := group.Close(); err != nil {
		fail("error closing consumer group: %v", err)
	}
	emit("closed", map[string]any{})
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "produce" {
		count, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fail("produce takes a count: %v", err)
		}
		produce(count)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "consume" {
		consume()
		return
	}
	fail("usage: sarama-walkthrough produce N | consume")
}
