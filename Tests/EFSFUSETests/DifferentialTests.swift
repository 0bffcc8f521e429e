// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// A differential tester in the spirit of fsx: one seeded sequence of operations is applied to files in an
/// encrypted directory of the mount and to the same names in a plain ext4 directory, and every result is compared:
/// bytes read, sizes, link counts and the errno of each call that fails.
///
/// `EFS_FSX_OPS` (default 100,000) and `EFS_FSX_SEED` change the run; a failure prints the seed, the operation
/// number and the operations before it, so it can be replayed.
@Suite("efs mount: differential (fsx)", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct DifferentialTests {
    /// The mount's default channel (io_uring where the kernel allows it, as in CI), then /dev/fuse alone with
    /// another seed and half the operations.
    @Test("seeded writes, appends, reads, truncates, punches, renames and links match ext4 byte for byte",
          arguments: [(channel: "auto", share: 1), (channel: "off", share: 2)])
    func differential(_ run: (channel: String, share: Int)) throws {
        let env = ProcessInfo.processInfo.environment
        let count = (env["EFS_FSX_OPS"].flatMap { Int($0) } ?? 100_000) / run.share
        let seed = (env["EFS_FSX_SEED"].flatMap { UInt64($0, radix: 16) } ?? 0x5EED_0EF5) &+ UInt64(run.share - 1)
        let m = try MountedVolume(options: ["--io-uring", run.channel])
        defer { m.unmount() }
        let ref = m.dir.appending("ref")
        try FileManager.default.createDirectory(atPath: ref.string, withIntermediateDirectories: false)
        var tester = Differential(mounted: m.m("secret"), reference: ref, seed: seed)
        defer { tester.closeAll() }
        try tester.run(count)
        tester.closeAll()
        // Every surviving name decrypts with the library to what ext4 holds, once the mount has let go of it.
        for name in Differential.names where TestFiles.exists(ref.appending(name)) {
            let f = try openWhenReleased(m.alice.session, m.b("secret/\(name)"))
            defer { try? f.close() }
            let expected = TestFiles.read(ref.appending(name))
            #expect(f.size == UInt64(expected.count), "\(name): size through the library")
            #expect(TestFiles.same(try f.read(at: 0, count: expected.count + 1), expected), "\(name): bytes through the library")
        }
        print("fsx (--io-uring \(run.channel)): \(count) operations, seed \(String(seed, radix: 16)): \(tester.summary)")
    }
}

/// The state of one differential run: open descriptor pairs per name, the random source and a short history.
struct Differential {
    static let names = ["a", "b", "c", "d"]
    static let maxSize = 1 << 20

    let mounted: FilePath
    let reference: FilePath
    let seed: UInt64
    var rng: SplitMix64
    /// Descriptor pairs (mount, reference) of names open read-write.
    var open: [String: (FileDescriptor, FileDescriptor)] = [:]
    var history: [String] = []
    var op = 0
    var counts: [String: Int] = [:]

    init(mounted: FilePath, reference: FilePath, seed: UInt64) {
        self.mounted = mounted
        self.reference = reference
        self.seed = seed
        self.rng = SplitMix64(seed: seed)
    }

    var summary: String { counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }

    mutating func closeAll() {
        for (_, (x, y)) in open {
            Sys.close(x)
            Sys.close(y)
        }
        open = [:]
    }

    mutating func close(_ names: String...) {
        for n in names {
            if let (x, y) = open.removeValue(forKey: n) {
                Sys.close(x)
                Sys.close(y)
            }
        }
    }

    /// Fails the test with the seed, the operation number and the recent history.
    func fail(_ message: String) -> Failure {
        Failure(description: "fsx seed \(String(seed, radix: 16)) op \(op): \(message)\nlast operations:\n" + history.suffix(25).joined(separator: "\n"))
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    mutating func note(_ s: String) {
        history.append("#\(op) \(s)")
        if history.count > 64 { history.removeFirst(history.count - 32) }
    }

    /// Runs `body` on the mount and on the reference; both must succeed or fail with the same errno.
    func both<T>(_ what: String, _ body: (FilePath) throws(Errno) -> T) throws -> (T, T)? {
        let x: Result<T, Errno>
        let y: Result<T, Errno>
        do throws(Errno) { x = .success(try body(mounted)) } catch { x = .failure(error) }
        do throws(Errno) { y = .success(try body(reference)) } catch { y = .failure(error) }
        switch (x, y) {
        case (.success(let a), .success(let b)): return (a, b)
        case (.failure(let a), .failure(let b)) where a == b: return nil
        case (.failure(let a), .success): throw fail("\(what): the mount failed with \(a), ext4 succeeded")
        case (.success, .failure(let b)): throw fail("\(what): ext4 failed with \(b), the mount succeeded")
        case (.failure(let a), .failure(let b)): throw fail("\(what): the mount failed with \(a), ext4 with \(b)")
        }
    }

    /// Runs `body` on the mount's descriptor of a pair, then on ext4's. A failure names the side and, for EBADF,
    /// what the descriptor is now in this process: a descriptor the tester never closed that is gone, or open on
    /// another file, was closed by other code running in the same test process (a double close there).
    func onEach<T>(_ what: String, _ pair: (FileDescriptor, FileDescriptor), _ body: (FileDescriptor) throws(Errno) -> T) throws -> (T, T) {
        func run(_ fd: FileDescriptor, _ side: String) throws -> T {
            do throws(Errno) { return try body(fd) } catch {
                throw fail("\(what) on \(side): \(error)" + (error == .badFileDescriptor ? "; \(Self.describe(fd))" : ""))
            }
        }
        return (try run(pair.0, "the mount"), try run(pair.1, "ext4"))
    }

    static func describe(_ fd: FileDescriptor) -> String {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd.rawValue)") else {
            return "descriptor \(fd.rawValue) is no longer open in this process: other code closed it"
        }
        return "descriptor \(fd.rawValue) is open on \(target)"
    }

    /// The open pair for `name`, opening (creating) it if needed.
    mutating func descriptors(_ name: String) throws -> (FileDescriptor, FileDescriptor) {
        if let pair = open[name] { return pair }
        guard let pair = try both("open \(name)", { dir throws(Errno) in
            try Sys.open(dir.appending(name), [.readWrite, .create], mode: [.ownerReadWrite, .groupRead])
        }) else { throw fail("open \(name) failed on both sides") }
        open[name] = pair
        return pair
    }

    /// A write length: mostly small, sometimes up to 64 KiB, rarely up to 300 KB.
    mutating func writeLength() -> Int {
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<70: return Int.random(in: 1...8_192, using: &rng)
        case 70..<95: return Int.random(in: 1...65_536, using: &rng)
        default: return Int.random(in: 1...300_000, using: &rng)
        }
    }

    mutating func pick() -> String { Self.names[Int.random(in: 0..<Self.names.count, using: &rng)] }

    mutating func run(_ count: Int) throws {
        for i in 0..<count {
            op = i
            try step()
            if i % 2_000 == 1_999 { try verifyAll() }
        }
        try verifyAll()
    }

    mutating func step() throws {
        let kind = Int.random(in: 0..<100, using: &rng)
        switch kind {
        case 0..<28: try write()
        case 28..<33: try append()
        case 33..<55: try read()
        case 55..<63: try truncate()
        case 63..<70: try fallocate()
        case 70..<74: try rename()
        case 74..<77: try link()
        case 77..<79: try unlink()
        case 79..<86: try stat()
        case 86..<88: try fsync()
        default: try reopen()
        }
    }

    mutating func count(_ what: String) { counts[what, default: 0] += 1 }

    mutating func write() throws {
        let name = pick()
        let len = writeLength()
        let off = Int.random(in: 0...(Self.maxSize - len), using: &rng)
        let data = TestFiles.bytes(len, seed: rng.next())
        note("write \(name) \(len) at \(off)")
        _ = try onEach("write \(name)", try descriptors(name)) { fd throws(Errno) in try Sys.pwriteAll(fd, data, at: Int64(off)) }
        count("write")
    }

    mutating func append() throws {
        let name = pick()
        let len = Int.random(in: 1...20_000, using: &rng)
        let data = TestFiles.bytes(len, seed: rng.next())
        note("append \(name) \(len)")
        _ = try both("append \(name)") { dir throws(Errno) in
            let fd = try Sys.open(dir.appending(name), [.writeOnly, .append, .create], mode: [.ownerReadWrite, .groupRead])
            defer { Sys.close(fd) }
            // A size near the limit stops growing: appends keep the files under maxSize.
            if try Sys.fstat(fd).size + Int64(len) > Int64(Self.maxSize) { return }
            try Sys.pwriteAll(fd, data, at: 0)  // O_APPEND: lands at the end whatever the offset
        }
        count("append")
    }

    mutating func read() throws {
        let name = pick()
        let off = Int.random(in: 0...Self.maxSize, using: &rng)
        let len = Int.random(in: 1...100_000, using: &rng)
        note("read \(name) \(len) at \(off)")
        let (a, b) = try onEach("read \(name)", try descriptors(name)) { fd throws(Errno) in try Sys.pread(fd, count: len, at: Int64(off)) }
        guard TestFiles.same(a, b) else {
            throw fail("read \(name) \(len) at \(off): \(difference(a, b))")
        }
        count("read")
    }

    mutating func truncate() throws {
        let name = pick()
        let size = Int.random(in: 0..<100, using: &rng) < 30 ? 0 : Int.random(in: 0...Self.maxSize, using: &rng)
        if Bool.random(using: &rng) {
            note("ftruncate \(name) \(size)")
            _ = try onEach("ftruncate \(name)", try descriptors(name)) { fd throws(Errno) in try Sys.ftruncate(fd, Int64(size)) }
        } else {
            note("truncate \(name) \(size) (by path)")
            _ = try both("truncate \(name)") { dir throws(Errno) in try Sys.truncate(dir.appending(name), Int64(size)) }
        }
        count("truncate")
    }

    mutating func fallocate() throws {
        let name = pick()
        let off = Int.random(in: 0..<Self.maxSize, using: &rng)
        let len = Int.random(in: 1...min(Self.maxSize - off, 200_000), using: &rng)
        // PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE, ZERO_RANGE|KEEP_SIZE, plain allocation, KEEP_SIZE allocation.
        let modes: [(Int32, String)] = [(0x03, "punch"), (0x10, "zero-range"), (0x11, "zero-range keep-size"), (0x00, "allocate"), (0x01, "allocate keep-size")]
        let (mode, label) = modes[Int.random(in: 0..<modes.count, using: &rng)]
        note("fallocate \(label) \(name) \(len) at \(off)")
        let (x, y) = try descriptors(name)
        let rx: Errno?, ry: Errno?
        do throws(Errno) { try Sys.fallocate(x, mode: mode, offset: Int64(off), length: Int64(len)); rx = nil } catch { rx = error }
        do throws(Errno) { try Sys.fallocate(y, mode: mode, offset: Int64(off), length: Int64(len)); ry = nil } catch { ry = error }
        guard rx == ry else { throw fail("fallocate \(label): mount \(rx.map { "\($0)" } ?? "ok"), ext4 \(ry.map { "\($0)" } ?? "ok")") }
        count("fallocate \(label)")
    }

    mutating func rename() throws {
        let from = pick(), to = pick()
        note("rename \(from) \(to)")
        close(from, to)
        _ = try both("rename \(from) \(to)") { dir throws(Errno) in try Sys.rename(dir.appending(from), dir.appending(to)) }
        count("rename")
    }

    mutating func link() throws {
        let from = pick(), to = pick()
        note("link \(from) \(to)")
        _ = try both("link \(from) \(to)") { dir throws(Errno) in try Sys.link(dir.appending(from), dir.appending(to)) }
        count("link")
    }

    mutating func unlink() throws {
        let name = pick()
        note("unlink \(name)")
        close(name)
        _ = try both("unlink \(name)") { dir throws(Errno) in try Sys.unlink(dir.appending(name)) }
        count("unlink")
    }

    mutating func stat() throws {
        let name = pick()
        note("stat \(name)")
        if let (a, b) = try both("stat \(name)", { dir throws(Errno) in try Sys.stat(dir.appending(name)) }) {
            guard a.size == b.size else { throw fail("stat \(name): size \(a.size) on the mount, \(b.size) on ext4") }
            guard a.linkCount == b.linkCount else { throw fail("stat \(name): \(a.linkCount) links on the mount, \(b.linkCount) on ext4") }
        }
        if let (x, y) = open[name] {
            let a = try Sys.fstat(x), b = try Sys.fstat(y)
            guard a.size == b.size else { throw fail("fstat \(name): size \(a.size) on the mount, \(b.size) on ext4") }
        }
        count("stat")
    }

    mutating func fsync() throws {
        let name = pick()
        note("fsync \(name)")
        let (x, _) = try descriptors(name)
        do throws(Errno) { try Sys.fsync(x) } catch {
            throw fail("fsync \(name) on the mount: \(error)" + (error == .badFileDescriptor ? "; \(Self.describe(x))" : ""))
        }
        count("fsync")
    }

    mutating func reopen() throws {
        let name = pick()
        note("close \(name)")
        close(name)
        count("close")
    }

    /// Reads every name whole on both sides and compares.
    mutating func verifyAll() throws {
        for name in Self.names {
            let pair = try both("verify \(name)") { dir throws(Errno) in try F.read(dir.appending(name)) }
            if let (a, b) = pair, !TestFiles.same(a, b) {
                throw fail("verify \(name): \(difference(a, b))")
            }
        }
        count("verify")
    }

    func difference(_ a: [UInt8], _ b: [UInt8]) -> String {
        if a.count != b.count { return "\(a.count) bytes from the mount, \(b.count) from ext4" }
        let i = a.indices.first { a[$0] != b[$0] } ?? 0
        return "first difference at byte \(i) of \(a.count)"
    }
}

/// The fsx tester holds its descriptors for minutes while the other tests of the process run beside it, so a second
/// `close` of a number anywhere in the process can take one of them: that is how it once failed at op 18,334 with
/// `write c: Bad file descriptor` in a parallel run (SysTests closed a descriptor mid-test and again in a `defer`).
@Suite("no descriptor closed twice")
struct DoubleCloseTests {
    @Test("regression: no Swift file under Sources or Tests closes a descriptor in a defer and again by hand, or in a do block before a throwing call and again in its catch")
    func noDoubleClose() throws {
        let root = FilePath(#filePath).removingLastComponent().removingLastComponent().removingLastComponent()
        var findings: [String] = []
        for top in ["Sources", "Tests"] {
            let base = root.appending(top)
            guard let walker = FileManager.default.enumerator(atPath: base.string) else { continue }
            for case let relative as String in walker where relative.hasSuffix(".swift") {
                let text = try String(contentsOfFile: base.appending(relative).string, encoding: .utf8)
                findings += DoubleCloseScan.findings(in: text).map { "\(top)/\(relative):\($0)" }
            }
        }
        #expect(findings == [], "\(findings.joined(separator: "\n"))")
        // The scan itself: it sees both shapes.
        #expect(DoubleCloseScan.findings(in: "    defer { Sys.close(a) }\n    Sys.close(a)\n}\n").count == 1)
        #expect(DoubleCloseScan.findings(in: "    do {\n        Sys.close(fd)\n        try f()\n    } catch {\n        Sys.close(fd)\n    }\n").count == 1)
        #expect(DoubleCloseScan.findings(in: "    do {\n        Sys.close(fd)\n        closed = true\n        try f()\n    } catch {\n        if !closed { Sys.close(fd) }\n    }\n").isEmpty)
    }
}

/// A line-based look for the two shapes of double close seen in this tree (a heuristic, not a parser: it knows
/// `Sys.close(name)` and indentation).
enum DoubleCloseScan {
    static func findings(in text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func indent(_ l: String) -> Int { l.prefix { $0 == " " }.count }
        func trimmed(_ l: String) -> String { l.trimmingCharacters(in: .whitespaces) }
        /// The names closed unconditionally by `Sys.close(name)` in `l` (not after an `if`).
        func closes(_ l: String) -> [String] {
            guard !l.contains("if ") else { return [] }
            return l.components(separatedBy: "Sys.close(").dropFirst().compactMap { $0.split(separator: ")").first.map(String.init) }
        }
        /// The index of the line that closes the block opened at `start` (the first later line at its indentation or
        /// less that starts with `}`).
        func end(of start: Int) -> Int {
            var j = start + 1
            while j < lines.count, !(indent(lines[j]) <= indent(lines[start]) && trimmed(lines[j]).hasPrefix("}")) { j += 1 }
            return j
        }
        var out: [String] = []
        for (i, line) in lines.enumerated() {
            let t = trimmed(line)
            if t.hasPrefix("defer {") {
                // The names a defer closes, on its line or (for a multi-line defer) on its own lines.
                var names = closes(String(t.dropFirst(7)))
                var after = i + 1
                if t == "defer {" {
                    // Only its own statements: a close inside an `if` below it is conditional.
                    after = end(of: i)
                    for k in (i + 1)..<min(after, lines.count) where indent(lines[k]) == indent(line) + 4 { names += closes(lines[k]) }
                    after += 1
                }
                // Later closes of the same names in the scope that holds the defer.
                var k = after
                while k < lines.count, indent(lines[k]) >= indent(line) || trimmed(lines[k]).isEmpty {
                    if !trimmed(lines[k]).hasPrefix("defer"), let n = closes(lines[k]).first(where: names.contains) {
                        out.append("\(k + 1): \(n) is closed here and by the defer at line \(i + 1)")
                    }
                    k += 1
                }
            } else if t == "do {" || t.hasPrefix("do throws") {
                let catchLine = end(of: i)
                guard catchLine < lines.count, trimmed(lines[catchLine]).hasPrefix("} catch") else { continue }
                let body = Array(lines[(i + 1)..<catchLine])
                for (j, l) in body.enumerated() {
                    for n in closes(l) where body[(j + 1)...].contains(where: { $0.contains("try ") }) {
                        let handler = lines[(catchLine + 1)..<min(end(of: catchLine), lines.count)]
                        if handler.contains(where: { indent($0) == indent(line) + 4 && closes($0).contains(n) }) {
                            out.append("\(i + j + 2): \(n) is closed before a throwing call and again in the catch at line \(catchLine + 1)")
                        }
                    }
                }
            }
        }
        return out
    }
}
