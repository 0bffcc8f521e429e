// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// A sans-I/O single-step reader of pax archives (ustar with pax 'x' and 'g' extended headers; GNU tar's 'L' and
/// 'K' long names and base-256 numbers on read).
///
/// Feed bytes with ``append(_:)`` and call ``next()``: it returns the next entry's header, or nil when it needs
/// more bytes (or, with ``isAtEnd``, when the archive has ended). After a header, take exactly `size` content bytes
/// with ``readContent(maximum:)``; the reader drops the padding itself, and ``next()`` skips whatever content was
/// not taken. At the end of input call ``finish()``, which rejects a truncated archive.
///
/// Every header is checked: checksum, magic, numeric fields, typeflag, and every pax record, against the named
/// maximums of ``ArchiveLimits``. The reader holds at most one extended header plus what the caller appended.
/// Two zero blocks end the archive; bytes after them must all be zero (tar pads archives to whole records).
///
/// ```swift
/// var reader = ArchiveReader()
/// reader.append(chunk)
/// while let entry = try reader.next() {
///     var left = entry.size
///     while left > 0 { let part = reader.readContent(maximum: 65_536); if part.isEmpty { break /* need more */ }; left -= UInt64(part.count) }
/// }
/// try reader.finish()  // at end of input
/// ```
public struct ArchiveReader: Sendable {
    enum State: Sendable { case header, content, end }

    var storage: [UInt8] = []
    var start = 0
    var state = State.header
    /// Bytes of the archive consumed so far.
    public private(set) var offset: UInt64 = 0
    /// Content bytes of the current entry not yet taken.
    public private(set) var contentRemaining: UInt64 = 0
    var paddingRemaining = 0
    var sawZeroBlock = false
    /// Records of 'g' headers, in force for every later entry.
    var global: [String: [UInt8]] = [:]
    var pendingExtended: [(String, [UInt8])]?
    var pendingLongName: String?
    var pendingLongLink: String?
    var metadataHeaders = 0
    var metadataStart: UInt64 = 0

    public init() {}

    /// Whether the end-of-archive marker has been read.
    public var isAtEnd: Bool { state == .end }

    /// Bytes appended but not yet consumed.
    public var bufferedCount: Int { storage.count - start }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Takes up to `maximum` content bytes of the current entry. Empty when none are buffered (need more) or none
    /// are left (``contentRemaining`` is 0).
    public mutating func readContent(maximum: Int) -> [UInt8] {
        guard state == .content, contentRemaining > 0, maximum > 0 else { return [] }
        let n = Int(min(UInt64(min(maximum, bufferedCount)), contentRemaining))
        let out = Array(storage[start..<(start + n)])
        consume(n)
        contentRemaining -= UInt64(n)
        return out
    }

    /// The next entry's header, or nil when more bytes are needed or the archive has ended (``isAtEnd``).
    public mutating func next() throws(ArchiveError) -> ArchiveEntry? {
        while true {
            switch state {
            case .end:
                // Trailing bytes after the marker are tolerated only if they are all zero.
                let rest = storage[start...]
                if let i = rest.firstIndex(where: { $0 != 0 }) {
                    throw ArchiveError(.trailingGarbage, "non-zero bytes after the end-of-archive marker", at: offset + UInt64(i - start))
                }
                consume(rest.count)
                return nil
            case .content:
                // Skip whatever content the caller did not take, then the padding.
                if contentRemaining > 0 {
                    let n = Int(min(UInt64(bufferedCount), contentRemaining))
                    consume(n)
                    contentRemaining -= UInt64(n)
                    if contentRemaining > 0 { return nil }
                }
                let p = min(paddingRemaining, bufferedCount)
                consume(p)
                paddingRemaining -= p
                if paddingRemaining > 0 { return nil }
                state = .header
            case .header:
                guard bufferedCount >= Ustar.blockSize else { return nil }
                let block = storage[start..<(start + Ustar.blockSize)]
                if block.allSatisfy({ $0 == 0 }) {
                    guard pendingExtended == nil, pendingLongName == nil, pendingLongLink == nil else {
                        throw ArchiveError(.malformed, "an extended header is not followed by an entry", at: offset)
                    }
                    consume(Ustar.blockSize)
                    if sawZeroBlock {
                        state = .end
                        continue
                    }
                    sawZeroBlock = true
                    continue
                }
                guard !sawZeroBlock else {
                    throw ArchiveError(.malformed, "a lone zero block inside the archive (the end marker is two)", at: offset - UInt64(Ustar.blockSize))
                }
                switch try header(block) {
                case .entry(let entry): return entry
                case .consumed: continue
                case .needMore: return nil  // a metadata header whose content is not all here yet
                }
            }
        }
    }

    /// Checks the end of input: the archive must have ended with its marker, not inside a header or content.
    public func finish() throws(ArchiveError) {
        switch state {
        case .end:
            guard storage[start...].allSatisfy({ $0 == 0 }) else {
                throw ArchiveError(.trailingGarbage, "non-zero bytes after the end-of-archive marker", at: offset)
            }
        case .content:
            throw ArchiveError(.truncated, "the archive ends inside an entry's content (\(contentRemaining) bytes missing)", at: offset)
        case .header:
            if bufferedCount > 0 {
                throw ArchiveError(.truncated, "the archive ends inside a header (\(bufferedCount) bytes of 512)", at: offset)
            }
            throw ArchiveError(.truncated, "the archive ends without its end-of-archive marker", at: offset)
        }
    }

    mutating func consume(_ n: Int) {
        start += n
        offset += UInt64(n)
    }

    // MARK: - Headers

    enum Step {
        case entry(ArchiveEntry)
        /// A metadata header ('x', 'g', 'L', 'K') was consumed with its content.
        case consumed
        /// A metadata header's content is not all buffered yet; nothing was consumed.
        case needMore
    }

    /// Decodes one header block. A metadata header is consumed with its content only once all of it is buffered.
    mutating func header(_ block: ArraySlice<UInt8>) throws(ArchiveError) -> Step {
        let at = offset
        let b = Array(block)
        // ustar: "the checksum field is the simple sum of all bytes in the header block, with the checksum field
        // taken as spaces". Historic writers summed signed chars; both are accepted, as GNU tar does.
        guard let stored = try Ustar.number(b[Ustar.checksum], "chksum", at: at) else {
            throw ArchiveError(.badChecksum, "the header has no checksum", at: at)
        }
        let sums = Ustar.checksums(b[...])
        guard stored == sums.unsigned || stored == sums.signed else {
            throw ArchiveError(.badChecksum, "header checksum \(String(stored, radix: 8)) does not match \(String(sums.unsigned, radix: 8))", at: at)
        }
        let isPOSIX = Array(b[Ustar.magic]) == Ustar.posixMagic && Array(b[Ustar.version]) == Ustar.posixVersion
        let isGNU = Array(b[Ustar.magic.lowerBound..<Ustar.version.upperBound]) == Ustar.gnuMagicAndVersion
        guard isPOSIX || isGNU else { throw ArchiveError(.badMagic, "not a ustar header", at: at) }
        let rawSize = try Ustar.number(b[Ustar.size], "size", at: at) ?? 0
        guard rawSize >= 0 else { throw ArchiveError(.badNumber, "negative size", at: at) }
        let flag = b[Ustar.typeflag]

        // Metadata headers: their content is read whole (bounded), then they apply to the next entry.
        switch flag {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            let maximum = flag == UInt8(ascii: "L") || flag == UInt8(ascii: "K")
                ? ArchiveLimits.maximumPathLength + 1 : ArchiveLimits.maximumExtendedHeaderSize
            guard rawSize <= maximum else {
                throw ArchiveError(.limitExceeded, "a '\(Character(Unicode.Scalar(flag)))' header of \(rawSize) bytes is above the \(maximum)-byte limit", at: at)
            }
            if metadataHeaders == 0 { metadataStart = at }
            guard metadataHeaders < ArchiveLimits.maximumMetadataHeadersPerEntry else {
                throw ArchiveError(.limitExceeded, "more than \(ArchiveLimits.maximumMetadataHeadersPerEntry) extended headers before one entry", at: at)
            }
            let size = Int(rawSize)
            let total = Ustar.blockSize + size + Ustar.padding(UInt64(size))
            guard bufferedCount >= total else { return .needMore }
            let content = storage[(start + Ustar.blockSize)..<(start + Ustar.blockSize + size)]
            switch flag {
            case UInt8(ascii: "x"):
                guard pendingExtended == nil else { throw ArchiveError(.malformed, "two 'x' headers for one entry", at: at) }
                pendingExtended = try PaxRecords.parse(content, at: at)
            case UInt8(ascii: "g"):
                for (k, v) in try PaxRecords.parse(content, at: at) {
                    if v.isEmpty && !k.hasPrefix(PaxKey.xattrPrefix) { global[k] = nil } else { global[k] = v }
                    guard global.count <= ArchiveLimits.maximumRecordCount else {
                        throw ArchiveError(.limitExceeded, "more than \(ArchiveLimits.maximumRecordCount) global pax records", at: at)
                    }
                }
            default:
                let text = Ustar.text(content)
                guard !text.isEmpty, let s = String(validating: text, as: UTF8.self) else {
                    throw ArchiveError(.malformed, "a GNU long name is empty or not UTF-8", at: at)
                }
                if flag == UInt8(ascii: "L") {
                    guard pendingLongName == nil else { throw ArchiveError(.malformed, "two 'L' headers for one entry", at: at) }
                    pendingLongName = s
                } else {
                    guard pendingLongLink == nil else { throw ArchiveError(.malformed, "two 'K' headers for one entry", at: at) }
                    pendingLongLink = s
                }
            }
            metadataHeaders += 1
            consume(total)
            return .consumed
        default:
            break
        }

        let kind: ArchiveEntry.Kind
        switch flag {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "S"): throw ArchiveError(.unsupported, "GNU sparse entries are not supported", at: at)
        case UInt8(ascii: "M"), UInt8(ascii: "V"): throw ArchiveError(.unsupported, "multi-volume archives are not supported", at: at)
        default:
            throw ArchiveError(.unsupported, "unknown entry type '\(Character(Unicode.Scalar(flag)))'", at: at)
        }

        func text(_ range: Range<Int>, _ what: String) throws(ArchiveError) -> String {
            guard let s = String(validating: Ustar.text(b[range]), as: UTF8.self) else {
                throw ArchiveError(.malformed, "the \(what) field is not UTF-8", at: at)
            }
            return s
        }
        func id(_ range: Range<Int>, _ name: StaticString) throws(ArchiveError) -> UInt32 {
            let v = try Ustar.number(b[range], name, at: at) ?? 0
            guard let u = UInt32(exactly: v) else { throw ArchiveError(.badNumber, "the \(name) field is out of range", at: at) }
            return u
        }

        var path = try text(Ustar.name, "name")
        if isPOSIX {
            let prefix = try text(Ustar.prefix, "prefix")
            if !prefix.isEmpty { path = prefix + "/" + path }
        }
        var entry = ArchiveEntry(kind: kind, path: path)
        entry.linkTarget = try text(Ustar.linkname, "linkname")
        entry.mode = UInt32(truncatingIfNeeded: try Ustar.number(b[Ustar.mode], "mode", at: at) ?? 0) & 0o7777
        entry.uid = try id(Ustar.uid, "uid")
        entry.gid = try id(Ustar.gid, "gid")
        entry.size = UInt64(rawSize)
        entry.modificationTime = ArchiveTime(seconds: try Ustar.number(b[Ustar.mtime], "mtime", at: at) ?? 0)
        entry.userName = try text(Ustar.uname, "uname")
        entry.groupName = try text(Ustar.gname, "gname")
        if kind == .characterDevice || kind == .blockDevice {
            entry.deviceMajor = try id(Ustar.devmajor, "devmajor")
            entry.deviceMinor = try id(Ustar.devminor, "devminor")
        }
        if let long = pendingLongName { entry.path = long }
        if let long = pendingLongLink { entry.linkTarget = long }

        // pax: extended header records override the ustar fields; 'g' records apply first, 'x' records after them,
        // and an empty value removes a global record for this entry (except for an extended attribute, which may
        // be empty).
        var records: [String: [UInt8]] = [:]
        for (k, v) in global where k != PaxKey.path && k != PaxKey.linkpath && k != PaxKey.size { records[k] = v }
        for (k, v) in pendingExtended ?? [] {
            records[k] = v.isEmpty && !k.hasPrefix(PaxKey.xattrPrefix) ? nil : v
        }
        try apply(records, to: &entry, at: metadataHeaders > 0 ? metadataStart : at)

        pendingExtended = nil
        pendingLongName = nil
        pendingLongLink = nil
        metadataHeaders = 0
        try check(&entry, at: at)
        consume(Ustar.blockSize)
        contentRemaining = entry.size
        paddingRemaining = Ustar.padding(entry.size)
        state = .content
        return .entry(entry)
    }

    /// The pax keywords ``apply(_:to:at:)`` reads (besides the xattr and GNU sparse prefixes); others are ignored.
    static let keywordsRead: Set<String> = [
        PaxKey.path, PaxKey.linkpath, PaxKey.uname, PaxKey.gname, PaxKey.size, PaxKey.uid, PaxKey.gid, PaxKey.mtime,
        PaxKey.atime, PaxKey.ctime, PaxKey.hdrcharset, PaxKey.efsRaw, PaxKey.efsDirectory,
    ]

    func apply(_ records: [String: [UInt8]], to e: inout ArchiveEntry, at: UInt64) throws(ArchiveError) {
        func string(_ key: String, _ v: [UInt8], maximum: Int) throws(ArchiveError) -> String {
            guard v.count <= maximum else {
                throw ArchiveError(.limitExceeded, "the pax '\(key)' value is longer than \(maximum) bytes", at: at)
            }
            guard !v.contains(0), let s = String(validating: v, as: UTF8.self) else {
                throw ArchiveError(.malformed, "the pax '\(key)' value is not UTF-8 text", at: at)
            }
            return s
        }
        var xattrs: [ExtendedAttribute] = []
        var raw = false
        var rawDirectory = false
        // In keyword order, so that with two bad records the same error is reported every time: a Dictionary's order
        // differs from one instance to the next (found by FuzzArchive; see FuzzRegressionTests). Keywords this reader
        // ignores are dropped before sorting, so many unknown records cost no more than before.
        let ordered = records.filter {
            Self.keywordsRead.contains($0.key) || $0.key.hasPrefix(PaxKey.xattrPrefix) || $0.key.hasPrefix(PaxKey.gnuSparsePrefix)
        }.sorted { $0.key < $1.key }
        for (key, v) in ordered {
            switch key {
            case PaxKey.path: e.path = try string(key, v, maximum: ArchiveLimits.maximumPathLength)
            case PaxKey.linkpath: e.linkTarget = try string(key, v, maximum: ArchiveLimits.maximumPathLength)
            case PaxKey.uname: e.userName = try string(key, v, maximum: ArchiveLimits.maximumNameLength)
            case PaxKey.gname: e.groupName = try string(key, v, maximum: ArchiveLimits.maximumNameLength)
            case PaxKey.size: e.size = try PaxRecords.decimal(v, key, maximum: ArchiveLimits.maximumEntrySize, at: at)
            case PaxKey.uid: e.uid = UInt32(try PaxRecords.decimal(v, key, maximum: UInt64(UInt32.max), at: at))
            case PaxKey.gid: e.gid = UInt32(try PaxRecords.decimal(v, key, maximum: UInt64(UInt32.max), at: at))
            case PaxKey.mtime: e.modificationTime = try PaxRecords.time(v, key, at: at)
            case PaxKey.atime: e.accessTime = try PaxRecords.time(v, key, at: at)
            case PaxKey.ctime: _ = try PaxRecords.time(v, key, at: at)  // checked, not restorable
            case PaxKey.hdrcharset:
                guard v == Array(PaxKey.utf8Charset.utf8) else {
                    throw ArchiveError(.unsupported, "header charset '\(String(decoding: v, as: UTF8.self))' is not supported", at: at)
                }
            case PaxKey.efsRaw:
                guard v == [UInt8(ascii: "1")] else { throw ArchiveError(.malformed, "EFS.raw must be 1", at: at) }
                raw = true
            case PaxKey.efsDirectory:
                guard v == [UInt8(ascii: "1")] else { throw ArchiveError(.malformed, "EFS.directory must be 1", at: at) }
                rawDirectory = true
            default:
                if key.hasPrefix(PaxKey.xattrPrefix) {
                    let name = String(key.dropFirst(PaxKey.xattrPrefix.count))
                    guard !name.isEmpty, name.utf8.count <= ArchiveLimits.maximumExtendedAttributeNameLength else {
                        throw ArchiveError(.limitExceeded, "an extended attribute name is empty or longer than \(ArchiveLimits.maximumExtendedAttributeNameLength) bytes", at: at)
                    }
                    guard v.count <= ArchiveLimits.maximumExtendedAttributeValueSize else {
                        throw ArchiveError(.limitExceeded, "extended attribute '\(name)' is larger than \(ArchiveLimits.maximumExtendedAttributeValueSize) bytes", at: at)
                    }
                    xattrs.append(ExtendedAttribute(name: name, value: v))
                    guard xattrs.count <= ArchiveLimits.maximumExtendedAttributeCount else {
                        throw ArchiveError(.limitExceeded, "more than \(ArchiveLimits.maximumExtendedAttributeCount) extended attributes on one entry", at: at)
                    }
                } else if key.hasPrefix(PaxKey.gnuSparsePrefix) {
                    throw ArchiveError(.unsupported, "GNU sparse files are not supported", at: at)
                }
            // Other keywords (comment, charset, other vendors') are ignored, as POSIX asks.
            }
        }
        e.extendedAttributes = xattrs.sorted { $0.name < $1.name }
        if raw { e.efsRaw = rawDirectory ? .directory : .file }
        guard !rawDirectory || raw else { throw ArchiveError(.malformed, "EFS.directory without EFS.raw", at: at) }
    }

    /// Checks the decoded entry as a whole.
    func check(_ e: inout ArchiveEntry, at: UInt64) throws(ArchiveError) {
        // Directories are written with a trailing '/'; members never keep one.
        while e.path.count > 1, e.path.hasSuffix("/") { e.path.removeLast() }
        guard !e.path.isEmpty, !e.path.utf8.contains(0) else { throw ArchiveError(.malformed, "an entry has an empty path", at: at) }
        guard e.path.utf8.count <= ArchiveLimits.maximumPathLength else {
            throw ArchiveError(.limitExceeded, "a path is longer than \(ArchiveLimits.maximumPathLength) bytes", at: at)
        }
        switch e.kind {
        case .symbolicLink, .hardLink:
            guard let t = e.linkTarget, !t.isEmpty else { throw ArchiveError(.malformed, "\(e.path): a link without a target", at: at) }
            guard t.utf8.count <= ArchiveLimits.maximumPathLength else {
                throw ArchiveError(.limitExceeded, "\(e.path): a link target is longer than \(ArchiveLimits.maximumPathLength) bytes", at: at)
            }
        default:
            e.linkTarget = nil
        }
        guard e.size <= ArchiveLimits.maximumEntrySize else {
            throw ArchiveError(.limitExceeded, "\(e.path): \(e.size) bytes is above the \(ArchiveLimits.maximumEntrySize)-byte limit", at: at)
        }
        // pax allows data after a hard link header (readers skip it); nothing else but regular files has content.
        guard e.size == 0 || e.kind == .regular || e.kind == .hardLink else {
            throw ArchiveError(.malformed, "\(e.path): a \(e.kind) entry with \(e.size) bytes of content", at: at)
        }
        if let raw = e.efsRaw {
            guard e.kind == .regular else { throw ArchiveError(.malformed, "\(e.path): EFS.raw on a non-regular entry", at: at) }
            if raw == .directory {
                guard e.path.split(separator: "/").last.map(String.init) == ArchiveEntry.efsDirectoryStreamName else {
                    throw ArchiveError(.malformed, "\(e.path): an EFS directory stream must be named DIR/.efs-dir", at: at)
                }
            }
        }
    }
}
