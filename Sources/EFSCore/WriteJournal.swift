// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto

/// The redo record that makes an in-place overwrite of stored blocks atomic per block against a process crash.
///
/// Linux checks for fatal signals between the pages of one `write(2)`, so a SIGKILL can leave a write that spans
/// pages half done; every 4124-byte stored block spans two pages, so such a tear would leave a block that fails
/// authentication. Before overwriting existing stored bytes, a writer puts this record past the end of the data
/// region, then writes the bytes in place, then truncates the record away. Layout (`Documentation/file-format.md`
/// §5.4), from data offset `dataEnd` to the end of the file:
///
///     payload (length bytes: the stored bytes, as they go in place)
///     padding (0…4095 zero bytes, so that the footer does not cross a 4 KiB boundary of the file)
///     footer (48): magic "EFS1RDO\0" ‖ u64 target ‖ u64 length ‖ u64 regionBefore ‖ checksum (16)
///
/// The writer puts the footer down first, in one write inside one page (which no signal can tear), then the
/// payload, then the bytes in place, then truncates the file back to `dataEnd`. So any crash leaves either no
/// footer (nothing changed yet), or a footer saying where the data region ends: with an intact payload (checksum
/// good) the write is redone and the region ends at `dataEnd`; with a torn one the in-place write had not started,
/// and the record is dropped and the region cut back to `regionBefore`.
///
/// `target` is the payload's offset in the data region; `regionBefore` the region's length before the write, and
/// `dataEnd` = max(`regionBefore`, `target` + `length`) its length once done (longer when the write re-seals the
/// old partial last block at a greater length). Records written before `regionBefore` was recorded hold `dataEnd`
/// in that field; they read the same, except that a torn one of a region-extending write keeps the longer length.
/// The checksum is the first 16 bytes of SHA-256 over the file id, the first 32 footer bytes and the payload:
/// it detects a torn payload and binds the record to its file. It is not a MAC: the payload is stored blocks, each
/// authenticated on its own when read.
public struct WriteJournal: Sendable, Equatable {
    public static let magic: [UInt8] = Array("EFS1RDO".utf8) + [0]
    public static let footerSize = 48
    static let page: UInt64 = 4096
    /// The largest payload a writer puts in one record (the writer splits bigger overwrites).
    public static let maximumPayload = 256 * ContentCipher.storedBlockSize
    /// The largest data-region length and data offset a footer is parsed for (a file offset, at most `Int64.max`).
    public static let maximumOffset = UInt64(Int64.max)

    public var target: UInt64
    public var length: Int
    /// The data region's length before the write (the footer's third field): what a torn record leaves.
    public var regionBefore: UInt64
    /// The bytes to put in place; nil when the record was torn before its payload was complete.
    public var payload: [UInt8]?

    /// The data region's length once the write is done, where the payload starts: the old length, or the end of
    /// the payload's place if the write extends the region (it rewrites the old partial last block longer).
    public var dataEnd: UInt64 { max(regionBefore, target + UInt64(length)) }

    /// The data region's length once the record is completed: ``dataEnd`` with an intact payload (redone); with a
    /// torn one the in-place write had not begun, so the region keeps its old length (``regionBefore``).
    public var regionAfterCompletion: UInt64 { payload != nil ? dataEnd : regionBefore }

    /// A record for overwriting from `target` in a data region of `regionBefore` bytes (`target < regionBefore`).
    public init(target: UInt64, regionBefore: UInt64, payload: [UInt8]) {
        self.target = target
        self.length = payload.count
        self.regionBefore = regionBefore
        self.payload = payload
    }

    /// A record as swift-efs wrote them before the footer held the old length: the footer's field is the length
    /// once done, so a torn record of an extending write cannot tell the old length (it was taken for the new).
    public init(target: UInt64, dataEnd: UInt64, payload: [UInt8]) {
        self.init(target: target, regionBefore: dataEnd, payload: payload)
    }

    init(target: UInt64, length: Int, regionBefore: UInt64, payload: [UInt8]?) {
        self.target = target
        self.length = length
        self.regionBefore = regionBefore
        self.payload = payload
    }

    /// Zero bytes between payload and footer when the data region starts at file offset `dataOffset`.
    public func padding(dataOffset: UInt64) -> Int {
        let footerAt = (dataOffset + dataEnd + UInt64(length)) % Self.page
        return footerAt + UInt64(Self.footerSize) > Self.page ? Int(Self.page - footerAt) : 0
    }

    /// Data-region offset of the footer.
    public func footerOffset(dataOffset: UInt64) -> UInt64 { dataEnd + UInt64(length) + UInt64(padding(dataOffset: dataOffset)) }

    /// The 48-byte footer (its checksum covers the payload).
    public func footer(fileID: FileID) -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: Self.magic)
        w.write(target)
        w.write(UInt64(length))
        w.write(regionBefore)
        let head = w.bytes
        return head + Self.checksum(fileID: fileID, head: head, payload: payload ?? [])
    }

    static func checksum(fileID: FileID, head: [UInt8], payload: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(data: fileID.bytes)
        h.update(data: head)
        h.update(data: payload)
        return Array(h.finalize().prefix(16))
    }

    /// The record whose footer is `footer` (the last 48 bytes of a data region of `regionLength` bytes starting at
    /// file offset `dataOffset`), if it is a well-formed footer of a record that ends the region; the payload is
    /// not read yet (nil).
    public static func footer(_ footer: some Collection<UInt8>, regionLength: UInt64, dataOffset: UInt64) -> WriteJournal? {
        let f = Array(footer)
        // Region and data offsets come from a file's size, so they are below 2^63; bounding them here keeps every
        // sum below (target + length, dataOffset + footerOffset) from overflowing on any input (FuzzWriteJournal).
        guard f.count == footerSize, Array(f[0..<8]) == magic, regionLength <= maximumOffset, dataOffset <= maximumOffset
        else { return nil }
        let target = UInt64.littleEndian(f[8..<16])
        let length = UInt64.littleEndian(f[16..<24])
        let regionBefore = UInt64.littleEndian(f[24..<32])
        guard length > 0, length <= UInt64(maximumPayload), target < regionBefore, regionBefore <= regionLength else { return nil }
        let dataEnd = max(regionBefore, target + length)
        guard dataEnd <= regionLength, regionLength - dataEnd >= length + UInt64(footerSize) else { return nil }
        let record = WriteJournal(target: target, length: Int(length), regionBefore: regionBefore, payload: nil)
        guard record.footerOffset(dataOffset: dataOffset) + UInt64(footerSize) == regionLength else { return nil }
        return record
    }

    /// This record with its payload, if `payload` (the `length` bytes at `dataEnd`) matches the footer's checksum;
    /// else this record without one (torn).
    public func withPayload(_ payload: [UInt8], footer: [UInt8], fileID: FileID) -> WriteJournal {
        var r = self
        let good = payload.count == length && footer.count == Self.footerSize
            && constantTimeEquals(Array(footer[32...]), Self.checksum(fileID: fileID, head: Array(footer[0..<32]), payload: payload))
        r.payload = good ? payload : nil
        return r
    }
}
