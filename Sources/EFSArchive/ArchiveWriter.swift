// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Encodes pax archive headers. Pure: the caller writes each header, then exactly `entry.size` content bytes, then
/// ``padding(afterContentOfSize:)``, and at the end ``endOfArchive``.
///
/// Values that do not fit the ustar fields (long or non-ASCII paths, link targets and names, sizes of 8 GiB and
/// more, large ids, times before 1970 or with nanoseconds), extended attributes and the `EFS.raw` vendor record go
/// into a pax extended header ('x') written before the ustar header, so that any pax reader, `tar -tvf` included,
/// lists the entry. `Documentation/archive-format.md`.
///
/// ```swift
/// try out.write(ArchiveWriter.header(for: entry))
/// try out.write(content)
/// try out.write(ArchiveWriter.padding(afterContentOfSize: entry.size))
/// try out.write(ArchiveWriter.endOfArchive)
/// ```
public enum ArchiveWriter {
    /// Two zero blocks: the end-of-archive marker.
    public static let endOfArchive = [UInt8](repeating: 0, count: 2 * Ustar.blockSize)
    public static let blockSize = Ustar.blockSize

    /// Zero bytes that bring content of `size` bytes to a whole number of 512-byte blocks.
    public static func padding(afterContentOfSize size: UInt64) -> [UInt8] {
        [UInt8](repeating: 0, count: Ustar.padding(size))
    }

    /// The header blocks of `entry`: a pax extended header when needed, then the ustar header.
    ///
    /// - Throws: ``ArchiveError/Code/invalidEntry`` or ``ArchiveError/Code/limitExceeded`` for an entry the reader
    ///   would refuse (so the writer never produces an archive this codec cannot read back).
    public static func header(for entry: ArchiveEntry) throws(ArchiveError) -> [UInt8] {
        try validate(entry)
        var records: [UInt8] = []
        var block = [UInt8](repeating: 0, count: Ustar.blockSize)

        // Path: name, or prefix + "/" + name, in ASCII; otherwise a pax 'path' record.
        let fullPath = entry.kind == .directory && !entry.path.hasSuffix("/") ? entry.path + "/" : entry.path
        let pathBytes = Array(fullPath.utf8)
        if let (prefix, name) = splitUstarPath(pathBytes) {
            put(&block, Ustar.name, name)
            put(&block, Ustar.prefix, prefix)
        } else {
            records += PaxRecords.encode(PaxKey.path, pathBytes)
            put(&block, Ustar.name, asciiPrefix(fullPath, 100))
        }
        if let target = entry.linkTarget, entry.kind == .symbolicLink || entry.kind == .hardLink {
            let bytes = Array(target.utf8)
            if bytes.count <= 100, isPortable(bytes) {
                put(&block, Ustar.linkname, bytes)
            } else {
                records += PaxRecords.encode(PaxKey.linkpath, bytes)
                put(&block, Ustar.linkname, asciiPrefix(target, 100))
            }
        }
        put(&block, Ustar.mode, Ustar.octal(UInt64(entry.mode & 0o7777), width: 8)!)
        for (value, range, key) in [(entry.uid, Ustar.uid, PaxKey.uid), (entry.gid, Ustar.gid, PaxKey.gid)] {
            if let o = Ustar.octal(UInt64(value), width: 8) {
                put(&block, range, o)
            } else {
                records += PaxRecords.encode(key, Array(String(value).utf8))
                put(&block, range, Ustar.octal(0, width: 8)!)
            }
        }
        if let o = Ustar.octal(entry.size, width: 12) {
            put(&block, Ustar.size, o)
        } else {
            records += PaxRecords.encode(PaxKey.size, Array(String(entry.size).utf8))
            put(&block, Ustar.size, Ustar.base256(entry.size, width: 12))
        }
        let mtime = entry.modificationTime
        if mtime.seconds >= 0, let o = Ustar.octal(UInt64(mtime.seconds), width: 12) {
            put(&block, Ustar.mtime, o)
            if mtime.nanoseconds != 0 { records += PaxRecords.encode(PaxKey.mtime, Array(PaxRecords.text(mtime).utf8)) }
        } else {
            put(&block, Ustar.mtime, Ustar.octal(0, width: 12)!)
            records += PaxRecords.encode(PaxKey.mtime, Array(PaxRecords.text(mtime).utf8))
        }
        if let atime = entry.accessTime { records += PaxRecords.encode(PaxKey.atime, Array(PaxRecords.text(atime).utf8)) }
        block[Ustar.typeflag] = typeflag(entry.kind)
        put(&block, Ustar.magic, Ustar.posixMagic)
        put(&block, Ustar.version, Ustar.posixVersion)
        for (name, range, key) in [(entry.userName, Ustar.uname, PaxKey.uname), (entry.groupName, Ustar.gname, PaxKey.gname)] {
            let bytes = Array(name.utf8)
            if bytes.count < 32, isPortable(bytes) {
                put(&block, range, bytes)
            } else {
                records += PaxRecords.encode(key, bytes)
            }
        }
        if entry.kind == .characterDevice || entry.kind == .blockDevice {
            for (value, range) in [(entry.deviceMajor, Ustar.devmajor), (entry.deviceMinor, Ustar.devminor)] {
                guard let o = Ustar.octal(UInt64(value), width: 8) else {
                    throw ArchiveError(.invalidEntry, "\(entry.path): device number \(value) does not fit a ustar header")
                }
                put(&block, range, o)
            }
        }
        for x in entry.extendedAttributes.sorted(by: { $0.name < $1.name }) {
            records += PaxRecords.encode(PaxKey.xattrPrefix + x.name, x.value)
        }
        if let raw = entry.efsRaw {
            records += PaxRecords.encode(PaxKey.efsRaw, Array("1".utf8))
            if raw == .directory { records += PaxRecords.encode(PaxKey.efsDirectory, Array("1".utf8)) }
        }
        seal(&block)
        guard !records.isEmpty else { return block }
        guard records.count <= ArchiveLimits.maximumExtendedHeaderSize else {
            throw ArchiveError(.limitExceeded, "\(entry.path): the extended header would be \(records.count) bytes, above \(ArchiveLimits.maximumExtendedHeaderSize)")
        }
        return extendedHeader(for: entry, size: records.count) + records + padding(afterContentOfSize: UInt64(records.count)) + block
    }

    // MARK: - Pieces

    /// The 'x' header block that precedes an entry's records. Its name is cosmetic ("PaxHeaders/NAME").
    static func extendedHeader(for entry: ArchiveEntry, size: Int) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Ustar.blockSize)
        let base = entry.path.split(separator: "/").last.map(String.init) ?? "entry"
        put(&block, Ustar.name, asciiPrefix("PaxHeaders/" + base, 100))
        put(&block, Ustar.mode, Ustar.octal(0o644, width: 8)!)
        put(&block, Ustar.uid, Ustar.octal(0, width: 8)!)
        put(&block, Ustar.gid, Ustar.octal(0, width: 8)!)
        put(&block, Ustar.size, Ustar.octal(UInt64(size), width: 12)!)
        let seconds = UInt64(max(0, entry.modificationTime.seconds))
        put(&block, Ustar.mtime, Ustar.octal(min(seconds, Ustar.octalMaximum(width: 12)), width: 12)!)
        block[Ustar.typeflag] = UInt8(ascii: "x")
        put(&block, Ustar.magic, Ustar.posixMagic)
        put(&block, Ustar.version, Ustar.posixVersion)
        seal(&block)
        return block
    }

    static func typeflag(_ kind: ArchiveEntry.Kind) -> UInt8 {
        switch kind {
        case .regular: UInt8(ascii: "0")
        case .hardLink: UInt8(ascii: "1")
        case .symbolicLink: UInt8(ascii: "2")
        case .characterDevice: UInt8(ascii: "3")
        case .blockDevice: UInt8(ascii: "4")
        case .directory: UInt8(ascii: "5")
        case .fifo: UInt8(ascii: "6")
        }
    }

    /// Writes the checksum: six octal digits, NUL, space (as POSIX tar does).
    static func seal(_ block: inout [UInt8]) {
        let sum = Ustar.checksums(block[...]).unsigned
        let digits = Array(String(sum, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, UInt8(ascii: " ")]
        put(&block, Ustar.checksum, field)
    }

    static func put(_ block: inout [UInt8], _ range: Range<Int>, _ bytes: some Collection<UInt8>) {
        precondition(bytes.count <= range.count, "a ustar field overflows")  // callers size-check every field
        block.replaceSubrange(range.lowerBound..<(range.lowerBound + bytes.count), with: bytes)
    }

    /// Printable ASCII without NUL: what ustar fields carry; anything else goes into pax records.
    static func isPortable(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } }

    /// The ustar name and prefix for `path`, or nil when it needs a pax 'path' record.
    static func splitUstarPath(_ path: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        guard isPortable(path) else { return nil }
        if path.count <= 100 { return ([], path) }
        guard path.count <= 256 else { return nil }
        // Split at a '/' so that the prefix has at most 155 bytes and the name at most 100 (and is not empty).
        // A trailing '/' of a directory stays in the name.
        for i in stride(from: min(155, path.count - 2), through: 1, by: -1) where path[i] == UInt8(ascii: "/") {
            let name = Array(path[(i + 1)...])
            if name.count <= 100, !name.isEmpty, name != [UInt8(ascii: "/")] { return (Array(path[..<i]), name) }
            break
        }
        return nil
    }

    /// At most `count` bytes of ASCII from `s` (others become '_'), for cosmetic fields.
    static func asciiPrefix(_ s: String, _ count: Int) -> [UInt8] {
        Array(s.utf8.map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "_") }.prefix(count))
    }

    static func validate(_ e: ArchiveEntry) throws(ArchiveError) {
        func bad(_ m: String) -> ArchiveError { ArchiveError(.invalidEntry, "\(e.path.isEmpty ? "(empty path)" : e.path): \(m)") }
        guard !e.path.isEmpty, !e.path.utf8.contains(0) else { throw bad("the path is empty or contains NUL") }
        guard e.path.utf8.count <= ArchiveLimits.maximumPathLength else {
            throw ArchiveError(.limitExceeded, "\(e.path.prefix(64))…: the path is longer than \(ArchiveLimits.maximumPathLength) bytes")
        }
        switch e.kind {
        case .symbolicLink, .hardLink:
            guard let t = e.linkTarget, !t.isEmpty, !t.utf8.contains(0) else { throw bad("a link needs a target without NUL") }
            guard t.utf8.count <= ArchiveLimits.maximumPathLength else {
                throw ArchiveError(.limitExceeded, "\(e.path): the link target is longer than \(ArchiveLimits.maximumPathLength) bytes")
            }
        default:
            guard e.linkTarget == nil else { throw bad("only links have a target") }
        }
        guard e.kind == .regular || e.size == 0 else { throw bad("only regular files have content") }
        guard e.size <= ArchiveLimits.maximumEntrySize else {
            throw ArchiveError(.limitExceeded, "\(e.path): \(e.size) bytes is above the \(ArchiveLimits.maximumEntrySize)-byte limit")
        }
        guard e.efsRaw == nil || e.kind == .regular else { throw bad("only regular entries carry an EFS raw stream") }
        for name in [e.userName, e.groupName] {
            guard name.utf8.count <= ArchiveLimits.maximumNameLength, !name.utf8.contains(0) else { throw bad("bad user or group name") }
        }
        guard e.extendedAttributes.count <= ArchiveLimits.maximumExtendedAttributeCount else {
            throw ArchiveError(.limitExceeded, "\(e.path): more than \(ArchiveLimits.maximumExtendedAttributeCount) extended attributes")
        }
        var seen = Set<String>()
        for x in e.extendedAttributes {
            guard !x.name.isEmpty, !x.name.utf8.contains(0), !x.name.contains("="), seen.insert(x.name).inserted else {
                throw bad("extended attribute name '\(x.name)' is empty, repeated, or contains '=' or NUL")
            }
            guard x.name.utf8.count <= ArchiveLimits.maximumExtendedAttributeNameLength,
                x.value.count <= ArchiveLimits.maximumExtendedAttributeValueSize
            else { throw ArchiveError(.limitExceeded, "\(e.path): extended attribute '\(x.name)' is too large") }
        }
    }
}
