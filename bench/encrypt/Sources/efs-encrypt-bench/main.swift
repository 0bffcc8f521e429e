// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.
//
// In-place encrypt and decrypt throughput against the AES-256-GCM seal rate of this machine and `cp`.
//
//   efs-encrypt-bench [--dir DIR] [--repeat N] [--seal-seconds S] [SIZE…]     (SIZE: 64M, 1G, 4096, …)
//   efs-encrypt-bench child encrypt|decrypt|idle STORE FILE RESULT            (internal: one timed operation)
//
// Each encrypt and decrypt runs in a child process (this binary again) so that its peak RSS can be read from
// wait4(2) on its own, uncontaminated by the parent's buffers.

import Crypto
import Dispatch
import EFS
import EFSCore  // a module of the EFS product: ContentCipher, for the in-memory library rows
import Foundation
import Glibc
import Synchronization
import SystemPackage

// MARK: - Small helpers

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func die(_ message: String) -> Never {
    FileHandle.standardError.write(Data("efs-encrypt-bench: \(message)\n".utf8))
    exit(2)
}

func errnoText() -> String { String(cString: strerror(errno)) }

let MiB = 1 << 20

func parseSize(_ s: String) -> Int {
    let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
    for (suffix, mult) in units where s.hasSuffix(suffix) {
        guard let n = Int(s.dropLast(suffix.count)) else { break }
        return n * mult
    }
    guard let n = Int(s), n >= 0 else { die("not a size: \(s) (use e.g. 64M, 1G, 4096)") }
    return n
}

func sizeLabel(_ n: Int) -> String {
    if n >= 1 << 30, n % (1 << 30) == 0 { return "\(n >> 30) GiB" }
    if n >= MiB, n % MiB == 0 { return "\(n >> 20) MiB" }
    if n >= 1 << 10, n % (1 << 10) == 0 { return "\(n >> 10) KiB" }
    return "\(n) B"
}

func fmt(_ x: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", x) }

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let n = s.count
    if n >= width { return s }
    let fill = String(repeating: " ", count: width - n)
    return right ? fill + s : s + fill
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

/// CPU time used on the whole machine (from /proc/stat) and by this process and its reaped children, in seconds.
/// The machine may be shared: the difference over a timed section is what other processes took.
struct CPUSample {
    var machine: Double
    var ours: Double
    static func take() -> CPUSample {
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var machine = 0.0
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        {
            // user nice system idle iowait irq softirq steal …: everything but idle and iowait is busy.
            let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            if f.count >= 8 { machine = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / hz }
        }
        func secs(_ who: Int32) -> Double {
            var ru = rusage()
            getrusage(__rusage_who_t(who), &ru)
            return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
        }
        return CPUSample(machine: machine, ours: secs(RUSAGE_SELF.rawValue) + secs(RUSAGE_CHILDREN.rawValue))
    }
    /// The share of the machine (0…1) that other processes used between `start` and now over `wall` seconds.
    static func foreignShare(since start: CPUSample, wall: Double, cores: Int) -> Double {
        let end = take()
        let other = (end.machine - start.machine) - (end.ours - start.ours)
        return max(0, other) / (max(wall, 0.01) * Double(cores))
    }
}

// MARK: - AES-256-GCM reference loops

enum AEADLoop {
    /// `AES.GCM.seal` with `AES.GCM.Nonce()` (one getrandom call per block): the issue's "seal rate".
    case seal
    /// The same, with the nonces cut from one 12 KiB random buffer per 1024 blocks.
    case sealPooledNonces
    /// `AES.GCM.open` of one sealed box, over and over.
    case `open`
}

/// Seals (or opens) 4096-byte blocks for about `seconds` on each of `threads` threads; returns bytes per second.
/// A fresh random nonce per seal and 32 bytes of associated data, as a v1 data block has; one-shot calls.
func aeadRate(seconds: Double, threads: Int, _ loop: AEADLoop) -> Double {
    let blocksDone = Mutex(0)
    let sink = Mutex<UInt8>(0)
    let start = now()
    DispatchQueue.concurrentPerform(iterations: threads) { _ in
        // Everything per thread: shared objects would add reference-count traffic between the cores.
        let key = SymmetricKey(size: .bits256)
        var gen = SystemRandomNumberGenerator()
        let block = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &gen) }
        let aad = (0..<32).map { _ in UInt8.random(in: 0...255, using: &gen) }
        let sealed = try! AES.GCM.seal(block, using: key, nonce: AES.GCM.Nonce(), authenticating: aad)
        let urandom = open("/dev/urandom", O_RDONLY)
        defer { close(urandom) }
        var n = 0
        var x: UInt8 = 0
        var pool = [UInt8](repeating: 0, count: 12 * 1024)
        let t0 = now()
        repeat {
            switch loop {
            case .seal:
                for _ in 0..<1024 {
                    let box = try! AES.GCM.seal(block, using: key, nonce: AES.GCM.Nonce(), authenticating: aad)
                    x ^= box.tag.first!
                }
            case .sealPooledNonces:
                pool.withUnsafeMutableBytes { _ = read(urandom, $0.baseAddress!, $0.count) }
                for i in 0..<1024 {
                    let nonce = try! AES.GCM.Nonce(data: pool[(i * 12)..<(i * 12 + 12)])
                    let box = try! AES.GCM.seal(block, using: key, nonce: nonce, authenticating: aad)
                    x ^= box.tag.first!
                }
            case .open:
                for _ in 0..<1024 {
                    let p = try! AES.GCM.open(sealed, using: key, authenticating: aad)
                    x ^= p.first!
                }
            }
            n += 1024
        } while now() - t0 < seconds
        blocksDone.withLock { $0 += n }
        sink.withLock { $0 ^= x }
    }
    let wall = now() - start
    _ = sink.withLock { $0 }
    return Double(blocksDone.withLock { $0 } * 4096) / wall
}

/// The library's own bulk path without any I/O: `ContentCipher.sealBlocks`/`openBlocks` (the file's reused AES-GCM
/// context, nonces from one DRBG call per run) over 4 MiB chunks of 1024 blocks, each chunk split into contiguous
/// ranges over `threads` threads writing into one output buffer, as `BlockStream` does. The gap to ``aeadRate`` is
/// what the reused context and the absence of per-block allocation buy; the gap to encryptFile is I/O.
func libraryRate(seconds: Double, threads: Int, open: Bool) -> Double {
    let cipher = ContentCipher(FileEncryptionKey.generate(fileID: .random()))
    let blocks = 1024
    let bs = ContentCipher.blockSize, sbs = ContentCipher.storedBlockSize
    var gen = SystemRandomNumberGenerator()
    let plain = (0..<(blocks * bs)).map { _ in UInt8.random(in: 0...255, using: &gen) }
    var stored = [UInt8](repeating: 0, count: blocks * sbs)
    plain.withUnsafeBytes { p in stored.withUnsafeMutableBytes { cipher.sealBlocks(first: 0, plaintext: p, into: $0) } }
    let per = (blocks + threads - 1) / threads
    var chunks = 0
    let t0 = now()
    repeat {
        var out = [UInt8](repeating: 0, count: open ? blocks * bs : blocks * sbs)
        out.withUnsafeMutableBytes { raw in
            let box = RawBox(raw)
            stored.withUnsafeBytes { st in
                plain.withUnsafeBytes { pl in
                    let src = RawBox(UnsafeMutableRawBufferPointer(mutating: open ? st : pl))
                    DispatchQueue.concurrentPerform(iterations: threads) { k in
                        let lo = k * per, hi = min(blocks, (k + 1) * per)
                        guard lo < hi else { return }
                        if open {
                            let bad = cipher.openBlocks(
                                first: UInt64(lo), stored: UnsafeRawBufferPointer(rebasing: src.raw[(lo * sbs)..<(hi * sbs)]),
                                into: UnsafeMutableRawBufferPointer(rebasing: box.raw[(lo * bs)..<(hi * bs)]), allowHole: false)
                            precondition(bad == nil, "a block failed to open")
                        } else {
                            cipher.sealBlocks(
                                first: UInt64(lo), plaintext: UnsafeRawBufferPointer(rebasing: src.raw[(lo * bs)..<(hi * bs)]),
                                into: UnsafeMutableRawBufferPointer(rebasing: box.raw[(lo * sbs)..<(hi * sbs)]))
                        }
                    }
                }
            }
        }
        chunks += 1
    } while now() - t0 < seconds
    return Double(chunks * blocks * bs) / (now() - t0)
}

struct RawBox: @unchecked Sendable {
    let raw: UnsafeMutableRawBufferPointer
    init(_ raw: UnsafeMutableRawBufferPointer) { self.raw = raw }
}

// MARK: - Child processes

struct ChildResult {
    var wall: Double  // seconds, spawn to reap, as seen by the parent
    var cpu: Double  // user + system seconds
}

/// Runs `argv` (a path, or a name looked up in PATH when `search`) and waits for it with wait4 for its rusage.
func spawnAndWait(_ argv: [String], search: Bool = false) -> ChildResult {
    var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
    cargs.append(nil)
    var cenv: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") }
    cenv.append(nil)
    defer {
        for p in cargs { free(p) }
        for p in cenv { free(p) }
    }
    var pid = pid_t()
    let t0 = now()
    let rc = search ? posix_spawnp(&pid, argv[0], nil, nil, cargs, cenv) : posix_spawn(&pid, argv[0], nil, nil, cargs, cenv)
    guard rc == 0 else { die("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var ru = rusage()
    while wait4(pid, &status, 0, &ru) < 0 {
        if errno != EINTR { die("wait4: \(errnoText())") }
    }
    let wall = now() - t0
    let exited = status & 0x7f == 0
    let code = (status >> 8) & 0xff
    guard exited, code == 0 else {
        die("\(argv.joined(separator: " ")) failed (\(exited ? "exit status \(code)" : "signal \(status & 0x7f)"))")
    }
    let cpu = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6
        + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
    return ChildResult(wall: wall, cpu: cpu)
}

/// VmHWM of this process: the peak RSS of the current address space. (ru_maxrss of a child spawned by a large
/// parent is useless: at exec the kernel folds in the hiwater RSS of the address space being replaced, which after
/// vfork/posix_spawn is the parent's.)
func peakRSSKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return -1 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}

/// `child OP STORE FILE RESULT`: performs one operation and writes its own wall time (seconds) and its peak RSS
/// (KiB) to RESULT.
func childMain(_ args: [String]) -> Never {
    guard args.count == 4 else { die("usage: child encrypt|decrypt|idle STORE FILE RESULT") }
    let session = EFSSession(keyStore: KeyStore(root: FilePath(args[1])), passphrase: nil)
    let file = FilePath(args[2])
    let t0 = now()
    do {
        switch args[0] {
        case "encrypt": try session.encryptFile(at: file)
        case "decrypt": try session.decryptFile(at: file)
        case "idle": _ = try session.fileEncryptionStatus(at: file)
        default: die("unknown child operation \(args[0])")
        }
    } catch {
        die("\(args[0]) \(file): \(error)")
    }
    let dt = now() - t0
    do { try "\(dt) \(peakRSSKiB())\n".write(toFile: args[3], atomically: false, encoding: .utf8) } catch { die("cannot write \(args[3]): \(error)") }
    exit(0)
}

// MARK: - Files

func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int) {
    var done = 0
    while done < count {
        let n = write(fd, p + done, count - done)
        if n < 0 {
            if errno == EINTR { continue }
            die("write: \(errnoText())")
        }
        done += n
    }
}

/// Writes `size` pseudo-random (incompressible) bytes and fsyncs them.
func writeRandomFile(_ path: String, size: Int, seed: UInt64) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { die("cannot create \(path): \(errnoText())") }
    var s = seed
    var buf = [UInt64](repeating: 0, count: 4 * MiB / 8)
    var off = 0
    while off < size {
        for i in buf.indices {  // SplitMix64
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            buf[i] = z ^ (z >> 31)
        }
        let n = min(buf.count * 8, size - off)
        buf.withUnsafeBytes { writeAll(fd, $0.baseAddress!, n) }
        off += n
    }
    guard fsync(fd) == 0 else { die("fsync \(path): \(errnoText())") }
    close(fd)
}

/// Writes `size` bytes to a new file and unlinks it at once, without fsync (so nothing reaches the disk). The
/// page-cache pages it freed are the ones the next new file gets. Why: on a VM whose free memory is handed back
/// to the host (virtio-balloon free page reporting, a few seconds after it is freed), the first touch of such a
/// page is slow (~3 ms per MiB here), and a write into a fresh file would measure that rather than the code.
func warmPageCache(_ path: String, size: Int) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { die("cannot create \(path): \(errnoText())") }
    let buf = [UInt8](repeating: 0xA5, count: 4 * MiB)
    var off = 0
    while off < size {
        let n = min(buf.count, size - off)
        buf.withUnsafeBytes { writeAll(fd, $0.baseAddress!, n) }
        off += n
    }
    close(fd)
    unlink(path)
}

/// Writes `size` bytes from one 4 MiB buffer into a new file with pwrite, as the library writes, and fsyncs it.
/// Returns the seconds to the last write and to the end of the fsync.
func timedWrite(_ path: String, size: Int) -> (write: Double, fsync: Double) {
    let buf = [UInt8](repeating: 0x5C, count: 4 * MiB)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { die("cannot create \(path): \(errnoText())") }
    let t0 = now()
    var off = 0
    while off < size {
        let n = min(buf.count, size - off)
        buf.withUnsafeBytes { writeAll(fd, $0.baseAddress!, n) }
        off += n
    }
    let t1 = now()
    guard fsync(fd) == 0 else { die("fsync \(path): \(errnoText())") }
    let t2 = now()
    close(fd)
    unlink(path)
    return (t1 - t0, t2 - t0)
}

func fsyncPath(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0, fsync(fd) == 0 else { die("fsync \(path): \(errnoText())") }
    close(fd)
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    guard stat(path, &st) == 0 else { die("stat \(path): \(errnoText())") }
    return Int(st.st_size)
}

func sameContents(_ a: String, _ b: String) -> Bool {
    guard fileSize(a) == fileSize(b) else { return false }
    let fa = open(a, O_RDONLY), fb = open(b, O_RDONLY)
    guard fa >= 0, fb >= 0 else { die("cannot open \(a) or \(b): \(errnoText())") }
    defer {
        close(fa)
        close(fb)
    }
    var ba = [UInt8](repeating: 0, count: 4 * MiB)
    var bb = [UInt8](repeating: 0, count: 4 * MiB)
    while true {
        let na = ba.withUnsafeMutableBytes { read(fa, $0.baseAddress!, $0.count) }
        var nb = 0
        while nb < na {
            let r = bb.withUnsafeMutableBytes { read(fb, $0.baseAddress! + nb, na - nb) }
            if r <= 0 { return false }
            nb += r
        }
        if na < 0 { die("read \(a): \(errnoText())") }
        if na == 0 { return true }
        if memcmp(ba, bb, na) != 0 { return false }
    }
}

func readResult(_ path: String) -> (seconds: Double, peakRSSKiB: Int) {
    let f = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
    guard f.count == 2, let t = Double(f[0]), let r = Int(f[1]) else { die("the child wrote no result to \(path)") }
    unlink(path)
    return (t, r)
}

// MARK: - Main

struct Options {
    var dir = "/work/bench-tmp"
    var repeats = 1
    var sealSeconds = 2.0
    var sizes: [Int] = []
    var keep = false
    var warm = true
}

func parseOptions(_ args: [String]) -> Options {
    var o = Options()
    var i = 0
    func value() -> String {
        i += 1
        guard i < args.count else { die("\(args[i - 1]) needs a value") }
        return args[i]
    }
    while i < args.count {
        switch args[i] {
        case "--dir": o.dir = value()
        case "--repeat": o.repeats = max(1, Int(value()) ?? 1)
        case "--seal-seconds": o.sealSeconds = Double(value()) ?? 2
        case "--keep": o.keep = true
        case "--cold": o.warm = false
        case "-h", "--help":
            print("""
                usage: efs-encrypt-bench [--dir DIR] [--repeat N] [--seal-seconds S] [--cold] [--keep] [SIZE…]
                  SIZE        file sizes to test (default 64M 1G); suffixes K, M, G (powers of 1024)
                  --dir       scratch directory, on the disk to measure (default /work/bench-tmp); a fresh
                              subdirectory is made in it and removed afterwards (unless --keep)
                  --repeat    time cp, encrypt and decrypt N times per size and report the median (default 1)
                  --seal-seconds  duration of each AES-GCM reference loop (default 2)
                  --cold      do not recycle page-cache pages before each timed step (see README: on a VM
                              that hands free memory back to the host, new files are then slow to write)
                """)
            exit(0)
        default: o.sizes.append(parseSize(args[i]))
        }
        i += 1
    }
    if o.sizes.isEmpty { o.sizes = [64 * MiB, 1 << 30] }
    return o
}

struct Row {
    var size: Int
    var op: String
    var fsync: String
    var times: [Double]  // seconds, one per repeat
    var rss: Int?  // KiB, max over repeats
    var cpu: Double?  // seconds, median
    var foreign: Double  // share of the machine other processes used, max over repeats
    var note = ""
    var median: Double { times.sorted()[times.count / 2] }
}

func median(_ a: [Double]) -> Double { a.sorted()[a.count / 2] }

func benchMain(_ o: Options) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let loadStart = loadAverage()

    // 1. The reference rates.
    func reference(threads: Int, _ loop: AEADLoop) -> (rate: Double, foreign: Double) {
        let c0 = CPUSample.take(), t0 = now()
        let r = aeadRate(seconds: o.sealSeconds, threads: threads, loop)
        return (r, CPUSample.foreignShare(since: c0, wall: now() - t0, cores: cores))
    }
    let seal1 = reference(threads: 1, .seal)
    let sealN = reference(threads: cores, .seal)
    let pooled1 = reference(threads: 1, .sealPooledNonces)
    let pooledN = reference(threads: cores, .sealPooledNonces)
    let open1 = reference(threads: 1, .open)
    let openN = reference(threads: cores, .open)
    func library(threads: Int, open: Bool) -> (rate: Double, foreign: Double) {
        let c0 = CPUSample.take(), t0 = now()
        let r = libraryRate(seconds: o.sealSeconds, threads: threads, open: open)
        return (r, CPUSample.foreignShare(since: c0, wall: now() - t0, cores: cores))
    }
    let lib1 = library(threads: 1, open: false)
    let libN = library(threads: cores, open: false)
    let libOpen1 = library(threads: 1, open: true)
    let libOpenN = library(threads: cores, open: true)

    // 2. A throw-away key store and volume on the disk under test.
    let root = o.dir + "/run-\(getpid())"
    do { try FileManager.default.createDirectory(atPath: root + "/vol", withIntermediateDirectories: true) } catch {
        die("cannot create \(root): \(error)")
    }
    defer {
        if !o.keep {
            try? FileManager.default.removeItem(atPath: root)
            rmdir(o.dir)  // only if empty
        }
    }
    let aliceStore = root + "/home-alice"
    do {
        let alice = KeyStore(root: FilePath(aliceStore))
        _ = try alice.generateKey(name: "alice", kind: .p256, recoveryAgent: false, passphrase: nil)
        let agent = KeyStore(root: FilePath(root + "/home-agent"))
        let agentCert = try agent.generateKey(name: "agent", kind: .p256, recoveryAgent: true, passphrase: nil)
        _ = try Volume.initialize(at: FilePath(root + "/vol"), recoveryAgents: [agentCert])
    } catch {
        die("cannot set up the key store and volume: \(error)")
    }
    let session = EFSSession(keyStore: KeyStore(root: FilePath(aliceStore)), passphrase: nil)

    // 3. Per size: cp, encrypt, decrypt.
    var rows: [Row] = []
    for size in o.sizes {
        let file = root + "/vol/data.bin"
        let copy = root + "/vol/data.cp"
        let result = root + "/result.txt"
        writeRandomFile(file, size: size, seed: UInt64(size) &+ 1)
        var cpTimes: [Double] = [], cpSyncTimes: [Double] = [], encTimes: [Double] = [], decTimes: [Double] = []
        var encRSS = 0, decRSS = 0, idleRSS = 0
        var cpCPU: [Double] = [], encCPU: [Double] = [], decCPU: [Double] = []
        var encWall: [Double] = [], decWall: [Double] = []
        var wrTimes: [Double] = [], wrSyncTimes: [Double] = [], wrForeign = 0.0
        var cpForeign = 0.0, encForeign = 0.0, decForeign = 0.0
        var storedSize = 0
        func warm() { if o.warm { warmPageCache(root + "/vol/warm.tmp", size: size + size / 50 + 16 * MiB) } }
        for r in 0..<o.repeats {
            // cp: source hot in the page cache (as it is for encrypt); nothing dirty before the clock starts.
            unlink(copy)
            sync()
            warm()
            var c0 = CPUSample.take()
            let t0 = now()
            let c = spawnAndWait(["cp", file, copy], search: true)
            let t1 = now()
            fsyncPath(copy)
            let t2 = now()
            cpForeign = max(cpForeign, CPUSample.foreignShare(since: c0, wall: t2 - t0, cores: cores))
            cpTimes.append(t1 - t0)
            cpSyncTimes.append(t2 - t0)
            cpCPU.append(c.cpu)

            // write: what the library's output side costs at best (user buffer → page cache → disk).
            sync()
            warm()
            c0 = CPUSample.take()
            let w = timedWrite(root + "/vol/write.tmp", size: size)
            wrForeign = max(wrForeign, CPUSample.foreignShare(since: c0, wall: w.fsync, cores: cores))
            wrTimes.append(w.write)
            wrSyncTimes.append(w.fsync)

            sync()
            warm()
            c0 = CPUSample.take()
            let e = spawnAndWait([exe, "child", "encrypt", aliceStore, file, result])
            encForeign = max(encForeign, CPUSample.foreignShare(since: c0, wall: e.wall, cores: cores))
            let er = readResult(result)
            encTimes.append(er.seconds)
            encRSS = max(encRSS, er.peakRSSKiB)
            encWall.append(e.wall)
            encCPU.append(e.cpu)
            guard (try? session.fileEncryptionStatus(at: FilePath(file))) == .encrypted else { die("\(file) is not encrypted after encryptFile") }
            storedSize = fileSize(file)

            if r == 0 {
                _ = spawnAndWait([exe, "child", "idle", aliceStore, file, result])
                idleRSS = readResult(result).peakRSSKiB
            }

            sync()
            warm()
            c0 = CPUSample.take()
            let d = spawnAndWait([exe, "child", "decrypt", aliceStore, file, result])
            decForeign = max(decForeign, CPUSample.foreignShare(since: c0, wall: d.wall, cores: cores))
            let dr = readResult(result)
            decTimes.append(dr.seconds)
            decRSS = max(decRSS, dr.peakRSSKiB)
            decWall.append(d.wall)
            decCPU.append(d.cpu)
            guard sameContents(file, copy) else { die("\(file) differs from the original after encrypt + decrypt") }
        }
        unlink(copy)
        unlink(file)
        rows.append(Row(size: size, op: "cp", fsync: "no", times: cpTimes, rss: nil, cpu: median(cpCPU), foreign: cpForeign,
                        note: "GNU cp: copy_file_range, in the kernel"))
        rows.append(Row(size: size, op: "cp + fsync", fsync: "yes", times: cpSyncTimes, rss: nil, cpu: nil, foreign: cpForeign))
        rows.append(Row(size: size, op: "pwrite", fsync: "no", times: wrTimes, rss: nil, cpu: nil, foreign: wrForeign,
                        note: "4 MiB pwrites of one buffer to a new file"))
        rows.append(Row(size: size, op: "pwrite + fsync", fsync: "yes", times: wrSyncTimes, rss: nil, cpu: nil, foreign: wrForeign))
        rows.append(Row(size: size, op: "encryptFile", fsync: "yes", times: encTimes, rss: encRSS, cpu: median(encCPU), foreign: encForeign,
                        note: "process \(fmt(median(encWall), 2)) s; stored \(fmt(Double(storedSize) / Double(MiB), 1)) MiB"))
        rows.append(Row(size: size, op: "decryptFile", fsync: "yes", times: decTimes, rss: decRSS, cpu: median(decCPU), foreign: decForeign,
                        note: "process \(fmt(median(decWall), 2)) s"))
        rows.append(Row(size: size, op: "(child baseline)", fsync: "-", times: [0], rss: idleRSS, cpu: nil, foreign: 0,
                        note: "same child, key store + status only"))
    }

    // 4. The table.
    let loadEnd = loadAverage()
    var uts = utsname()
    uname(&uts)
    let kernel = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    let cpuModel = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
        .split(separator: "\n").first(where: { $0.hasPrefix("model name") })?.split(separator: ":").last?
        .trimmingCharacters(in: .whitespaces) ?? "?"
    func rate(_ r: (rate: Double, foreign: Double)) -> String {
        pad(fmt(r.rate / 1e6), 6, right: true) + " MB/s (others \(pad(fmt(r.foreign * 100), 2, right: true))%)"
    }
    print("""
        efs-encrypt-bench  \(ISO8601DateFormatter().string(from: Date()))
        machine: \(cores) cores, \(cpuModel), Linux \(kernel); scratch \(o.dir); load average \(loadStart) at start, \(loadEnd) at end
        MB = 10^6 bytes. Rates are plaintext bytes / wall time. Times are medians of \(o.repeats) run(s).
        page cache: \(o.warm ? "warm (a scratch file of the size is written and unlinked before each timed step)" : "cold (--cold: no recycling of page-cache pages)")

        AES-256-GCM (swift-crypto), 4096-byte blocks, random nonce per seal, 32-byte AAD, \(fmt(o.sealSeconds, 1)) s each:
          seal  1 thread  \(rate(seal1))    seal  \(cores) threads \(rate(sealN))
          open  1 thread  \(rate(open1))    open  \(cores) threads \(rate(openN))
          seal with nonces from one getrandom per 1024 blocks (not the reference; what batching nonces would give):
                1 thread  \(rate(pooled1))          \(cores) threads \(rate(pooledN))
        The same through the library's bulk path in memory (ContentCipher.sealBlocks/openBlocks, reused AES-GCM context, 4 MiB chunks, as BlockStream):
          seal  1 thread  \(rate(lib1))    seal  \(cores) threads \(rate(libN))
          open  1 thread  \(rate(libOpen1))    open  \(cores) threads \(rate(libOpenN))

        """)
    let header = ["size", "operation", "fsync", "time s", "MB/s", "÷seal 1T", "÷seal \(cores)T", "÷cp+fsync", "peak RSS MiB", "CPU s", "others", "notes"]
    let widths = [8, 16, 5, 7, 6, 8, 8, 9, 12, 5, 6, 0]
    func line(_ cells: [String]) -> String {
        zip(cells, widths).enumerated().map { i, cw in
            cw.1 == 0 ? cw.0 : pad(cw.0, cw.1, right: i >= 3 && i <= 10)
        }.joined(separator: "  ")
    }
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: max($0, 5)) }))
    for row in rows {
        let rssText = row.rss.map { fmt(Double($0) / 1024, 1) } ?? "-"
        let cpuText = row.cpu.map { fmt($0, 2) } ?? "-"
        if row.op.hasPrefix("(") {
            print(line([sizeLabel(row.size), row.op, row.fsync, "-", "-", "-", "-", "-", rssText, cpuText, "-", row.note]))
            continue
        }
        let t = row.median
        let r = Double(row.size) / t
        let cpSync = rows.first(where: { $0.size == row.size && $0.op == "cp + fsync" })!.median
        var note = row.note
        if row.times.count > 1 { note = "min \(fmt(row.times.min()!, 3)) max \(fmt(row.times.max()!, 3)) s" + (note.isEmpty ? "" : "; " + note) }
        print(line([sizeLabel(row.size), row.op, row.fsync, fmt(t, 3), fmt(r / 1e6), fmt(r / seal1.rate, 2), fmt(r / sealN.rate, 2),
                    fmt(cpSync / t, 2), rssText, cpuText, fmt(row.foreign * 100) + "%", note]))
    }
    print("""

        fsync: whether the timed section ends with the data durable. cp: the source is hot in the page cache (so is
        the source of encrypt and decrypt); "cp" stops the clock when cp exits, "cp + fsync" after an fsync of the copy.
        encryptFile/decryptFile: in place and atomic; timed inside a child process around the one call, which includes
        the fsync of the new file and of its directory. "process": the child's whole life (exec, key store, the call).
        pwrite: the parent writes the size from one 4 MiB buffer into a new file (the library's output side, no crypto).
        ÷cp+fsync: time of cp + fsync / time of the row (1.0 = as fast as a durable copy).
        peak RSS: VmHWM of the child after the call (Swift runtime and key store included; see the baseline row).
        CPU s: user + system seconds of the child (more than "time s" means several cores were busy).
        others: share of the whole machine's CPU that other processes used meanwhile, kernel threads included (so the
        writeback of the step's own data counts there in fsync rows); far above that, the machine was shared.
        """)
}

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "child" {
    childMain(Array(args.dropFirst()))
} else {
    benchMain(parseOptions(args))
}
