// Confluent's Parallel Consumer doing the work `python -m bench processing` gives ours:
// wait N ms per record, in the given ordering, at most the given records in flight.
// Prints one JSON line: the records per second after a tenth of them as a warm-up.
import io.confluent.parallelconsumer.ParallelConsumerOptions;
import io.confluent.parallelconsumer.ParallelConsumerOptions.CommitMode;
import io.confluent.parallelconsumer.ParallelConsumerOptions.ProcessingOrder;
import io.confluent.parallelconsumer.ParallelStreamProcessor;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class ParallelBench {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        long total = Long.parseLong(args[3]);
        int concurrency = Integer.parseInt(args[4]);
        long waitMs = Long.parseLong(args[5]);
        ProcessingOrder order = ProcessingOrder.valueOf(args[6]);

        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", group);
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        Consumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        ParallelConsumerOptions<byte[], byte[]> options = ParallelConsumerOptions.<byte[], byte[]>builder()
                .ordering(order)
                .maxConcurrency(concurrency)
                .commitMode(CommitMode.PERIODIC_CONSUMER_ASYNCHRONOUS)
                .consumer(consumer)
                .build();
        ParallelStreamProcessor<byte[], byte[]> processor =
                ParallelStreamProcessor.createEosStreamProcessor(options);

        long warmup = total / 10;
        AtomicLong done = new AtomicLong();
        AtomicLong started = new AtomicLong();
        AtomicLong ended = new AtomicLong();
        CountDownLatch finished = new CountDownLatch(1);
        processor.subscribe(List.of(topic));
        processor.poll(context -> {
            try {
                Thread.sleep(waitMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            long n = done.incrementAndGet();
            if (n == warmup) {
                started.set(System.nanoTime());
            } else if (n == total) {
                ended.set(System.nanoTime());
                finished.countDown();
            }
        });
        if (!finished.await(600, TimeUnit.SECONDS)) {
            System.err.println("timed out after " + done.get() + " records");
            System.exit(1);
        }
        double seconds = (ended.get() - started.get()) / 1e9;
        System.out.println("{\"records\": " + (total - warmup) + ", \"seconds\": " + seconds + "}");
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }
}
