/*
 * Starts mongo-java-server (an in-memory MongoDB wire-protocol server) on 127.0.0.1:<port> for the
 * tests and the embedded runtime where no mongod is installed. Run as a Java 17 single-file program:
 *
 *   java -cp '<jars dir>/*' MongoServerLauncher.java <port> [--watch-stdin]
 *
 * Prints "READY <port>" once it accepts connections (port 0 picks a free one and prints it).
 * Stops on SIGTERM/SIGINT, and with --watch-stdin also when its stdin closes, so a parent that dies
 * without cleaning up does not leave a server behind.
 *
 * It reports MongoDB 4.4 (wire version 9): the official Node.js driver 7 refuses anything older, and
 * mongo-java-server's own ServerVersion.MONGO_5_0 still reports wire version 8. 4.4 is the lowest the
 * driver accepts, so the driver expects the fewest newer server features.
 */
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class MongoServerLauncher {
    /** What hello/buildInfo report; mongo-java-server uses the version for nothing else. */
    static final MongoVersion MONGO_4_4 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: MongoServerLauncher <port> [--watch-stdin]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        boolean watchStdin = args.length > 1 && "--watch-stdin".equals(args[1]);

        MemoryBackend backend = new MemoryBackend();
        backend.version(MONGO_4_4);
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        InetSocketAddress address = server.getLocalAddress();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            stopped.countDown();
        }, "mongo-java-server-shutdown"));

        if (watchStdin) {
            Thread watcher = new Thread(() -> {
                try (InputStream in = System.in) {
                    byte[] buffer = new byte[256];
                    while (in.read(buffer) >= 0) {
                        // Input is ignored; only end-of-stream matters.
                    }
                } catch (Exception ignored) {
                    // A broken stdin means the parent is gone, same as EOF.
                }
                System.exit(0);
            }, "stdin-watcher");
            watcher.setDaemon(true);
            watcher.start();
        }

        System.out.println("READY " + address.getPort());
        System.out.flush();
        stopped.await();
    }
}
