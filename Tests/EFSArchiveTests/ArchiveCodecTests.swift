// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import Testing

/// One member of every kind, with every attribute the codec carries.
func everyKind() -> [(ArchiveEntry, [UInt8])] {
    let t = ArchiveTime(seconds: 1_700_000_000, nanoseconds: 123_456_789)
    let x = [ExtendedAttribute(name: "user.comment", value: Array("hi".utf8)), ExtendedAttribute(name: "user.bin", value: [0, 0xFF, 0x3D, 0x0A])]
    var members: [(ArchiveEntry, [UInt8])] = []
    members.append((ArchiveEntry(kind: .directory, path: "top", mode: 0o755, uid: 1000, gid: 1000, userName: "alice", groupName: "staff",
                                 modificationTime: t, accessTime: t, extendedAttributes: x), []))
    members.append((ArchiveEntry(kind: .regular, path: "top/file.txt", size: 5, mode: 0o640, uid: 1000, gid: 100, userName: "alice",
                                 groupName: "users", modificationTime: ArchiveTime(seconds: 1_000_000), accessTime: t), Array("hello".utf8)))
    members.append((ArchiveEntry(kind: .regular, path: "top/empty", mode: 0o600), []))
    members.append((ArchiveEntry(kind: .regular, path: "top/block", size: 512, mode: 0o644), [UInt8](repeating: 7, count: 512)))
    members.append((ArchiveEntry(kind: .regular, path: "top/raw.bin", size: 1_000, mode: 0o600, efsRaw: .file), [UInt8](repeating: 9, count: 1_000)))
    members.append((ArchiveEntry(kind: .directory, path: "top/secret", mode: 0o700), []))
    members.append((ArchiveEntry(kind: .regular, path: "top/secret/.efs-dir", size: 3, efsRaw: .directory), [1, 2, 3]))
    members.append((ArchiveEntry(kind: .symbolicLink, path: "top/link", linkTarget: "../elsewhere/file", mode: 0o777), []))
    members.append((ArchiveEntry(kind: .hardLink, path: "top/hard", linkTarget: "top/file.txt", mode: 0o640), []))
    members.append((ArchiveEntry(kind: .fifo, path: "top/pipe", mode: 0o620), []))
    members.append((ArchiveEntry(kind: .characterDevice, path: "top/null", mode: 0o666, deviceMajor: 1, deviceMinor: 3), []))
    members.append((ArchiveEntry(kind: .blockDevice, path: "top/sda", mode: 0o660, deviceMajor: 8, deviceMinor: 0), []))
    return members
}

/// What the reader gives back for `e`: extended attributes sorted by name.
func normalized(_ e: ArchiveEntry) -> ArchiveEntry {
    var e = e
    e.extendedAttributes.sort { $0.name < $1.name }
    return e
}

func expectSame(_ a: [(ArchiveEntry, [UInt8])], _ b: [(ArchiveEntry, [UInt8])], _ comment: Comment? = nil) {
    #expect(a.count == b.count, comment)
    for (x, y) in zip(a, b) {
        #expect(normalized(x.0) == y.0, comment)
        #expect(x.1 == y.1, comment)
    }
}

@Suite("Archive codec: round trips")
struct ArchiveCodecTests {
    @Test("every entry kind round-trips with its attributes, xattrs and EFS.raw records")
    func everyEntryKind() throws {
        let members = everyKind()
        let bytes = try archive(members)
        #expect(bytes.count % 512 == 0)
        expectSame(members, try readAll(bytes))
        let raw = try readAll(bytes).filter { $0.0.efsRaw != nil }.map { $0.0.efsRaw }
        #expect(raw == [.file, .directory])
    }

    @Test("decodes the same members byte by byte, in chunks, and at every split point")
    func dripFeed() throws {
        let members = everyKind()
        let bytes = try archive(members)
        expectSame(members, try readAll(bytes, chunk: 1), "byte by byte")
        for chunk in [7, 511, 512, 513, 4_096] { expectSame(members, try readAll(bytes, chunk: chunk), "chunk \(chunk)") }
        // Every split point of the first members (headers, pax records, content, padding of each kind).
        let head = Array(members.prefix(5))
        let small = try archive(head)
        for split in 0...small.count { expectSame(head, try readAll(small, split: split), "split \(split)") }
    }

    @Test("a plain entry is one ustar block with no pax header")
    func compact() throws {
        let e = ArchiveEntry(kind: .regular, path: "a/b.txt", size: 3, mode: 0o644, uid: 1, gid: 2, userName: "u", groupName: "g",
                             modificationTime: ArchiveTime(seconds: 1_234))
        let h = try ArchiveWriter.header(for: e)
        #expect(h.count == 512)
        #expect(Array(h[0..<7]) == Array("a/b.txt".utf8))
        #expect(h[156] == UInt8(ascii: "0"))
        #expect(Array(h[257..<265]) == Array("ustar\u{0}00".utf8))
        #expect(Array(h[124..<136]) == Array("00000000003".utf8) + [0])
    }

    @Test("long paths: ustar prefix split up to 255 bytes, pax path beyond, GNU long names on read")
    func longNames() throws {
        let dir = String(repeating: "d", count: 120)
        let split = ArchiveEntry(kind: .regular, path: dir + "/" + String(repeating: "f", count: 90))
        let h = try ArchiveWriter.header(for: split)
        #expect(h.count == 512, "fits name + prefix")
        #expect(Array(h[345..<465]) == Array(dir.utf8))
        let long = (0..<40).map { _ in String(repeating: "x", count: 99) }.joined(separator: "/")
        #expect(long.utf8.count == 3_999)
        let unicode = "données/résumé-📄.txt"
        let target = String(repeating: "t", count: 300)
        let members: [(ArchiveEntry, [UInt8])] = [
            (split, []), (ArchiveEntry(kind: .regular, path: long, size: 1), [42]), (ArchiveEntry(kind: .regular, path: unicode), []),
            (ArchiveEntry(kind: .symbolicLink, path: "l", linkTarget: target), []),
            (ArchiveEntry(kind: .hardLink, path: "h", linkTarget: long), []),
            (ArchiveEntry(kind: .regular, path: "owner", userName: String(repeating: "u", count: 40), groupName: "grüppe"), []),
        ]
        expectSame(members, try readAll(try archive(members)))
        // GNU tar's ././@LongLink headers ('L' for the name, 'K' for the link target).
        let gnu = Block.meta("L", Array(long.utf8) + [0]) + Block.meta("K", Array(target.utf8) + [0])
            + Block.make("short", type: "2", gnu: true) + Block.end
        let read = try readAll(gnu)
        #expect(read.count == 1)
        #expect(read.first?.0.path == long)
        #expect(read.first?.0.linkTarget == target)
        #expect(read.first?.0.kind == .symbolicLink)
    }

    @Test("huge sizes, large ids and times before 1970 or with nanoseconds go through pax records")
    func largeValues() throws {
        let sizes: [UInt64] = [0o77777777777, 0o77777777777 + 1, 1 << 40, ArchiveLimits.maximumEntrySize]
        for size in sizes {
            let e = ArchiveEntry(kind: .regular, path: "big", size: size)
            var r = ArchiveReader()
            r.append(try ArchiveWriter.header(for: e))
            let got = try #require(try r.next())
            #expect(got.size == size)
            #expect(r.contentRemaining == size)
            #expect(throws: ArchiveError(.truncated, "")) { try r.finish() }
        }
        #expect(throws: ArchiveError(.limitExceeded, "")) {
            try ArchiveWriter.header(for: ArchiveEntry(kind: .regular, path: "big", size: ArchiveLimits.maximumEntrySize + 1))
        }
        let times = [ArchiveTime(seconds: -1, nanoseconds: 1), ArchiveTime(seconds: -315_619_200, nanoseconds: 123_456_789),
                     ArchiveTime(seconds: -5), ArchiveTime(seconds: 0o77777777777 + 1), ArchiveTime(seconds: 0, nanoseconds: 999_999_999)]
        let members = times.enumerated().map { (i, t) in
            (ArchiveEntry(kind: .regular, path: "t\(i)", uid: UInt32.max, gid: 3_000_000, modificationTime: t, accessTime: t), [UInt8]())
        }
        expectSame(members, try readAll(try archive(members)))
    }

    @Test("pax times are written the way GNU tar writes them")
    func timeText() throws {
        let e = ArchiveEntry(kind: .regular, path: "old", modificationTime: ArchiveTime(seconds: -315_619_200, nanoseconds: 123_456_789))
        let h = try ArchiveWriter.header(for: e)
        #expect(contains(h, Array("30 mtime=-315619199.876543211\n".utf8)))
    }

    @Test("global 'g' records apply to later entries; an empty 'x' value removes one")
    func globalHeaders() throws {
        let g = Block.meta("g", Block.record("uname", "globaluser") + Block.record("SCHILY.xattr.user.g", "1") + Block.record("comment", "ignored"))
        let x = Block.meta("x", Block.record("uname", ""))
        let bytes = g + Block.make("a") + x + Block.make("b") + Block.make("c") + Block.end
        let read = try readAll(bytes)
        #expect(read.map(\.0.userName) == ["globaluser", "", "globaluser"])
        #expect(read.map(\.0.extendedAttributes.count) == [1, 1, 1])
    }

    @Test("old-style numbers: leading spaces, space terminators, full-width fields, base-256, signed checksums")
    func numberForms() throws {
        let spaced = Block.make("a", size: 3) { b in Block.put(&b, 124, Array("         3 ".utf8) + [0]) }
        let full = Block.make("b", size: 3) { b in Block.put(&b, 124, Array("000000000003".utf8)) }
        let b256 = Block.make("c", size: 3) { b in Block.put(&b, 124, [0x80] + [UInt8](repeating: 0, count: 10) + [3]) }
        let negative = Block.make("d") { b in Block.put(&b, 136, [UInt8](repeating: 0xFF, count: 12)) }
        var signed = Block.make("e", checksum: false) { b in for i in 500..<512 { b[i] = 0xFF } }
        for i in 148..<156 { signed[i] = 0x20 }
        let sum = signed.reduce(0) { $0 + Int64(Int8(bitPattern: $1)) }
        Block.put(&signed, 148, Block.octal(UInt64(sum), 6) + [0, 0x20])
        let bytes = spaced + [1, 2, 3] + Block.pad(3) + full + [4, 5, 6] + Block.pad(3) + b256 + [7, 8, 9] + Block.pad(3) + negative + signed + Block.end
        let read = try readAll(bytes)
        #expect(read.map(\.1) == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [], []])
        #expect(read[3].0.modificationTime == ArchiveTime(seconds: -1))
    }

    @Test("trailing zeros after the end marker are fine; two zero blocks are enough")
    func trailingZeros() throws {
        let bytes = try archive(everyKind())
        expectSame(everyKind(), try readAll(bytes + [UInt8](repeating: 0, count: 10_240 - bytes.count % 10_240)))
        expectSame([], try readAll(Block.end))
        expectSame([], try readAll(Block.end + [0, 0, 0]))
    }

    @Test("the writer refuses what the reader would refuse")
    func writerRefuses() {
        let bad: [ArchiveEntry] = [
            ArchiveEntry(kind: .regular, path: ""),
            ArchiveEntry(kind: .regular, path: "a\u{0}b"),
            ArchiveEntry(kind: .directory, path: "d", size: 1),
            ArchiveEntry(kind: .symbolicLink, path: "l"),
            ArchiveEntry(kind: .regular, path: "f", linkTarget: "x"),
            ArchiveEntry(kind: .directory, path: "d", efsRaw: .file),
            ArchiveEntry(kind: .regular, path: "x", extendedAttributes: [ExtendedAttribute(name: "user.a=b", value: [])]),
            ArchiveEntry(kind: .regular, path: "x", extendedAttributes: [ExtendedAttribute(name: "", value: [])]),
            ArchiveEntry(kind: .regular, path: "x", extendedAttributes: [ExtendedAttribute(name: "user.a", value: []), ExtendedAttribute(name: "user.a", value: [])]),
        ]
        for e in bad { #expect(throws: ArchiveError.self, "\(e)") { try ArchiveWriter.header(for: e) } }
        let tooLong = ArchiveEntry(kind: .regular, path: String(repeating: "p", count: ArchiveLimits.maximumPathLength + 1))
        #expect(throws: ArchiveError(.limitExceeded, "")) { try ArchiveWriter.header(for: tooLong) }
        let big = ArchiveEntry(kind: .regular, path: "x", extendedAttributes: [ExtendedAttribute(name: "user.a", value: [UInt8](repeating: 1, count: ArchiveLimits.maximumExtendedAttributeValueSize + 1))])
        #expect(throws: ArchiveError(.limitExceeded, "")) { try ArchiveWriter.header(for: big) }
        let many = ArchiveEntry(kind: .regular, path: "x", extendedAttributes: (0...ArchiveLimits.maximumExtendedAttributeCount).map { ExtendedAttribute(name: "user.\($0)", value: []) })
        #expect(throws: ArchiveError(.limitExceeded, "")) { try ArchiveWriter.header(for: many) }
        let huge = ArchiveEntry(kind: .regular, path: "x", extendedAttributes: (0..<100).map { ExtendedAttribute(name: "user.\($0)", value: [UInt8](repeating: 1, count: 65_536)) })
        #expect(throws: ArchiveError(.limitExceeded, "")) { try ArchiveWriter.header(for: huge) }
    }
}

func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return true }
    return false
}
