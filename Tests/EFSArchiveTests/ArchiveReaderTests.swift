// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import Testing

/// Reads `bytes` and returns the error code, or nil if it was accepted.
func failure(_ bytes: [UInt8]) -> ArchiveError.Code? {
    do {
        _ = try readAll(bytes)
        return nil
    } catch {
        return error.code
    }
}

@Suite("Archive codec: hostile and broken input")
struct ArchiveReaderTests {
    @Test("a truncated archive is refused at every cut, byte by byte and whole")
    func truncation() throws {
        let bytes = try archive(everyKind())
        // Every cut in the first members, then around every block boundary and at a stride.
        var cuts = Set<Int>(0..<min(3_072, bytes.count))
        for b in stride(from: 3_072, to: bytes.count, by: 512) { cuts.formUnion([b - 1, b, b + 1]) }
        cuts.formUnion(stride(from: 3_072, to: bytes.count, by: 97))
        cuts = cuts.filter { $0 < bytes.count }
        for cut in cuts.sorted() {
            let code = failure(Array(bytes[0..<cut]))
            #expect(code == .truncated, "cut at \(cut)")
        }
        #expect(throws: ArchiveError(.truncated, "")) { try readAll(Array(bytes[0..<1_000]), chunk: 1) }
        #expect(failure(bytes) == nil)
    }

    @Test("every header byte flip is caught by the checksum (or yields a valid, different header)")
    func checksums() throws {
        let one = try archive([(ArchiveEntry(kind: .regular, path: "f", size: 2), [1, 2])])
        for i in 0..<512 where !(148..<156).contains(i) {
            var bad = one
            bad[i] ^= 0x01
            #expect(failure(bad) == .badChecksum, "flip at \(i)")
        }
        var noSum = Block.make("a")
        for i in 148..<156 { noSum[i] = 0 }
        #expect(failure(noSum + Block.end) == .badChecksum)
    }

    @Test("malformed headers: magic, numbers, type flags, lone zero blocks, trailing garbage")
    func malformedHeaders() {
        #expect(failure(Block.make("a") { b in Block.put(&b, 257, Array("ustaR".utf8)) } + Block.end) == .badMagic)
        #expect(failure(Block.make("a") { b in Block.put(&b, 257, [UInt8](repeating: 0, count: 8)) } + Block.end) == .badMagic)
        #expect(failure(Block.make("a") { b in Block.put(&b, 100, Array("0000689".utf8)) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a") { b in Block.put(&b, 124, Array("00000x00000".utf8)) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a") { b in Block.put(&b, 124, [0x80, 0xFF] + [UInt8](repeating: 0, count: 10)) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a") { b in Block.put(&b, 124, [UInt8](repeating: 0xFF, count: 12)) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a") { b in Block.put(&b, 124, [0xC0] + [UInt8](repeating: 0, count: 11)) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a") { b in Block.put(&b, 108, [0x80, 0, 0, 1, 0, 0, 0, 0]) } + Block.end) == .badNumber)
        #expect(failure(Block.make("a", type: "S") + Block.end) == .unsupported)
        #expect(failure(Block.make("a", type: "M") + Block.end) == .unsupported)
        #expect(failure(Block.make("a", type: "Z") + Block.end) == .unsupported)
        #expect(failure(Block.make("") + Block.end) == .malformed)
        #expect(failure(Block.make("a") { b in b[0] = 0xC3; b[1] = 0x28 } + Block.end) == .malformed)
        #expect(failure(Block.make("d/", type: "5", size: 1) + [UInt8](repeating: 0, count: 512) + Block.end) == .malformed)
        #expect(failure(Block.make("l", type: "2") + Block.end) == .malformed)
        #expect(failure([UInt8](repeating: 0, count: 512) + Block.make("a") + Block.end) == .malformed)
        #expect(failure(Block.make("a") + Block.end + [0, 0, 1]) == .trailingGarbage)
        #expect(failure(Block.make("a") + Block.end + Block.make("b")) == .trailingGarbage)
        #expect(failure(Block.make("a") + [UInt8](repeating: 0, count: 512)) == .truncated)
        #expect(failure(Array(Block.make("a").prefix(100))) == .truncated)
    }

    @Test("malformed pax records")
    func malformedRecords() {
        func x(_ content: [UInt8]) -> ArchiveError.Code? { failure(Block.meta("x", content) + Block.make("a") + Block.end) }
        #expect(x(Array("12 path=ab\n5 a=\n".utf8)) == .malformed, "length longer than the record")
        #expect(x(Array("11 path=ab\n".utf8)) == nil, "exact")
        #expect(x(Array("9 path=ab\n".utf8)) == .malformed, "length too short")
        #expect(x(Array("10 path=ab ".utf8)) == .malformed, "no newline")
        #expect(x(Array("010 path=a\n".utf8)) == .malformed, "leading zero")
        #expect(x(Array("8 pathab\n".utf8)) == .malformed, "no '='")
        #expect(x(Array("6 =ab\n".utf8)) == .malformed, "no keyword")
        #expect(x(Array("path=ab\n".utf8)) == .malformed, "no length")
        #expect(x(Array("3 \n".utf8)) == .malformed, "too short")
        #expect(x(Array("99 path=ab\n".utf8)) == .malformed, "runs past the header")
        #expect(x(Block.record("size", "12a")) == .badNumber)
        #expect(x(Block.record("size", "-1")) == .badNumber)
        #expect(x(Block.record("size", "012")) == .badNumber)
        #expect(x(Block.record("uid", "4294967296")) == .limitExceeded)
        #expect(x(Block.record("mtime", "1.")) == .badNumber)
        #expect(x(Block.record("mtime", "--1")) == .badNumber)
        #expect(x(Block.record("mtime", "1e9")) == .badNumber)
        #expect(x(Block.record("path", [0x61, 0, 0x62])) == .malformed)
        #expect(x(Block.record("path", [0xFF])) == .malformed)
        #expect(x(Block.record("path", "/x/")) == nil)
        #expect(x(Block.record("hdrcharset", "BINARY")) == .unsupported)
        #expect(x(Block.record("GNU.sparse.size", "10")) == .unsupported)
        #expect(x(Block.record("EFS.raw", "2")) == .malformed)
        #expect(x(Block.record("EFS.directory", "1")) == .malformed, "EFS.directory without EFS.raw")
        #expect(x(Block.record("EFS.raw", "1") + Block.record("EFS.directory", "1")) == .malformed, "named a, not DIR/.efs-dir")
        #expect(failure(Block.meta("x", Block.record("EFS.raw", "1")) + Block.make("d", type: "5") + Block.end) == .malformed)
        #expect(x(Block.record("SCHILY.xattr.", "v")) == .limitExceeded)
        #expect(x(Block.record("vendor.unknown", "whatever")) == nil)
        // Structure around extended headers.
        #expect(failure(Block.meta("x", Block.record("uid", "1")) + Block.meta("x", Block.record("gid", "1")) + Block.make("a") + Block.end) == .malformed)
        #expect(failure(Block.meta("x", Block.record("uid", "1")) + Block.end) == .malformed)
        #expect(failure(Block.meta("L", Array("n".utf8) + [0]) + Block.meta("L", Array("m".utf8) + [0]) + Block.make("a") + Block.end) == .malformed)
        #expect(failure(Block.meta("L", [0]) + Block.make("a") + Block.end) == .malformed)
        #expect(failure(Block.meta("x", Block.record("uid", "1"))) == .truncated)
    }

    @Test("every named limit is enforced")
    func limits() {
        func x(_ content: [UInt8]) -> ArchiveError.Code? { failure(Block.meta("x", content) + Block.make("a") + Block.end) }
        // Path and link target length.
        #expect(x(Block.record("path", String(repeating: "p", count: ArchiveLimits.maximumPathLength))) == nil)
        #expect(x(Block.record("path", String(repeating: "p", count: ArchiveLimits.maximumPathLength + 1))) == .limitExceeded)
        #expect(failure(Block.meta("x", Block.record("linkpath", String(repeating: "p", count: ArchiveLimits.maximumPathLength + 1)))
                        + Block.make("l", type: "2") + Block.end) == .limitExceeded)
        #expect(failure(Block.meta("L", [UInt8](repeating: 0x61, count: ArchiveLimits.maximumPathLength + 1) + [0]) + Block.make("a") + Block.end) == .limitExceeded)
        // User and group names.
        #expect(x(Block.record("uname", String(repeating: "u", count: ArchiveLimits.maximumNameLength + 1))) == .limitExceeded)
        // Record size and count, header size.
        #expect(x(Block.record("comment", String(repeating: "c", count: ArchiveLimits.maximumRecordSize))) == .limitExceeded)
        #expect(x((0...ArchiveLimits.maximumRecordCount).flatMap { _ in Block.record("comment", "c") }) == .limitExceeded)
        let oversized = Block.make("PaxHeaders/x", type: "x", size: UInt64(ArchiveLimits.maximumExtendedHeaderSize + 1))
        #expect(failure(oversized + [UInt8](repeating: 0, count: 1_024)) == .limitExceeded, "refused from the header alone")
        // Extended attributes: count, name length, value size.
        let count = (0...ArchiveLimits.maximumExtendedAttributeCount).flatMap { Block.record("SCHILY.xattr.user.\($0)", "v") }
        #expect(x(count) == .limitExceeded)
        #expect(x(Block.record("SCHILY.xattr." + String(repeating: "n", count: ArchiveLimits.maximumExtendedAttributeNameLength + 1), "v")) == .limitExceeded)
        #expect(x(Block.record("SCHILY.xattr.user.big", [UInt8](repeating: 1, count: ArchiveLimits.maximumExtendedAttributeValueSize + 1))) == .limitExceeded)
        #expect(x(Block.record("SCHILY.xattr.user.big", [UInt8](repeating: 1, count: ArchiveLimits.maximumExtendedAttributeValueSize))) == nil)
        // Entry size, in pax and in base-256.
        #expect(x(Block.record("size", String(ArchiveLimits.maximumEntrySize + 1))) == .limitExceeded)
        #expect(failure(Block.make("a") { b in Block.put(&b, 124, [0x80, 0, 0, 0, 0x7F] + [UInt8](repeating: 0xFF, count: 7)) }) == .limitExceeded)
        // Metadata headers before one entry, and global records.
        let gs = (0...ArchiveLimits.maximumMetadataHeadersPerEntry).flatMap { _ in Block.meta("g", Block.record("comment", "c")) }
        #expect(failure(gs + Block.make("a") + Block.end) == .limitExceeded)
        let globals = (0...ArchiveLimits.maximumRecordCount).map { Block.record("k\($0)", "v") }
        let half = globals.count / 2
        #expect(failure(Block.meta("g", globals[..<half].flatMap { $0 }) + Block.meta("g", globals[half...].flatMap { $0 }) + Block.make("a") + Block.end) == .limitExceeded)
    }

    @Test("content not taken by the caller is skipped; readContent never passes the entry's end")
    func skipping() throws {
        let members = everyKind()
        let bytes = try archive(members)
        var r = ArchiveReader()
        r.append(bytes)
        var paths: [String] = []
        while let e = try r.next() {
            paths.append(e.path)
            if e.size > 0 { #expect(r.readContent(maximum: 1).count == 1) }
        }
        #expect(r.isAtEnd)
        try r.finish()
        #expect(paths == members.map(\.0.path))
        var one = ArchiveReader()
        one.append(try archive([(ArchiveEntry(kind: .regular, path: "f", size: 3), [1, 2, 3]), (ArchiveEntry(kind: .regular, path: "g", size: 1), [4])]))
        _ = try one.next()
        #expect(one.readContent(maximum: 100) == [1, 2, 3])
        #expect(one.readContent(maximum: 100) == [])
        #expect(try one.next()?.path == "g")
    }
}
