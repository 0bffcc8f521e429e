// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// What can be learnt from an encrypted backing file without any key: its header, the current metadata slot and
/// the layout of its data region. `Documentation/file-format.md` §2–§5.
public struct EncryptedFileInfo: Sendable {
    public var header: FileHeader
    public var metadata: FileMetadata
    /// The encoded metadata body as stored (what the raw stream carries).
    public var metadataBody: [UInt8]
    public var metadataGeneration: UInt64
    public var activeSlot: Int
    /// Length of the backing file.
    public var backingLength: Int64
    /// The two size-record copies, as stored (bytes 64..<192).
    public var sizeRecordBytes: [UInt8]

    /// Length of the data region that holds whole stored blocks. A tail of 1…28 bytes past the last block (what an
    /// extending write interrupted by a full disk or a crash can leave) holds no block and is not counted; writers
    /// trim it (``physicalDataLength`` is the real length).
    public var storedDataLength: UInt64 {
        let physical = physicalDataLength
        let rem = physical % UInt64(ContentCipher.storedBlockSize)
        return rem > 0 && rem <= UInt64(ContentCipher.overhead) ? physical - rem : physical
    }

    /// Length of the data region as on disk (without a pending write record, which follows it).
    public var physicalDataLength: UInt64 {
        journal?.regionAfterCompletion ?? UInt64(max(0, backingLength - Int64(header.dataOffset)))
    }

    /// The redo record of an in-place overwrite that a crash interrupted (``WriteJournal``), if the file ends with
    /// one. Opening the file for writing completes the write (or drops a torn record); until then the blocks it
    /// covers may fail authentication.
    public var journal: WriteJournal?

    /// Finds a redo record at the end of the backing file (`Documentation/file-format.md` §5.4).
    static func pendingJournal(_ file: BackingReader, header: FileHeader, fileID: FileID, backingLength: Int64) throws(Errno) -> WriteJournal? {
        let dataOffset = UInt64(header.dataOffset)
        let region = UInt64(max(0, backingLength - Int64(dataOffset)))
        guard region > UInt64(WriteJournal.footerSize) else { return nil }
        let footer = try file.read(WriteJournal.footerSize, at: backingLength - Int64(WriteJournal.footerSize))
        guard let record = WriteJournal.footer(footer, regionLength: region, dataOffset: dataOffset) else { return nil }
        let payload = try file.read(record.length, at: Int64(dataOffset + record.dataEnd))
        return record.withPayload(payload, footer: footer, fileID: fileID)
    }

    /// Bytes read from the first ``BackingReader/prefixSize`` bytes of a backing file at once: for the usual
    /// metadata sizes that holds the header, the size records and both metadata slots (and all of a small file),
    /// so reading the structure costs one `pread` instead of six (it showed in `efs backup` of many small files).
    struct BackingReader {
        static let prefixSize = 16_384
        let fd: FileDescriptor
        let prefix: [UInt8]

        init(_ fd: FileDescriptor, prefix: [UInt8]) {
            self.fd = fd
            self.prefix = prefix
        }

        func read(_ count: Int, at offset: Int64) throws(Errno) -> [UInt8] {
            if offset >= 0, count >= 0, offset + Int64(count) <= Int64(prefix.count) {
                return Array(prefix[Int(offset)..<(Int(offset) + count)])
            }
            return try Sys.pread(fd, count: count, at: offset)
        }
    }

    /// Reads and checks the structure of an encrypted file.
    public static func read(_ fd: FileDescriptor, path: FilePath?) throws(EFSError) -> EncryptedFileInfo {
        try mapErrors(path, "cannot read") {
            let st = try Sys.fstat(fd)
            let file = BackingReader(fd, prefix: try Sys.pread(fd, count: Int(min(Int64(BackingReader.prefixSize), max(0, st.size))), at: 0))
            let head = try file.read(192, at: 0)
            let header = try FileHeader(decoding: head)
            guard head.count == 192 else { throw FormatError.truncated("size records") }
            guard st.size >= Int64(header.dataOffset) else {
                throw FormatError(.truncated, "truncated input: the file ends at \(st.size) before its data region at \(header.dataOffset)")
            }
            var best: (gen: UInt64, body: [UInt8], slot: Int)?
            var firstError: FormatError?
            for slot in 0..<2 {
                let off = Int64(header.slotOffset(slot))
                do {
                    let slotHead = try file.read(MetadataSlot.headerSize, at: off)
                    guard let (_, length) = try MetadataSlot.decodeHeader(slotHead, capacity: header.slotCapacity) else { continue }
                    let whole = try file.read(MetadataSlot.headerSize + length, at: off)
                    guard let (gen, body) = try MetadataSlot.decode(whole, capacity: header.slotCapacity) else { continue }
                    if gen > (best?.gen ?? 0) { best = (gen, body, slot) }
                } catch let e as FormatError {
                    firstError = firstError ?? e
                }
            }
            guard let best else {
                throw firstError ?? FormatError.malformed("no valid metadata slot")
            }
            let metadata = try FileMetadata(decoding: best.body)
            guard metadata.fileID == header.fileID else { throw FormatError.malformed("metadata belongs to another file (file id mismatch)") }
            let stored = UInt64(st.size - Int64(header.dataOffset))
            // A 1…28-byte tail past the last whole block is a torn extension and is ignored (see storedDataLength);
            // whether the blocks before it are enough is decided against the authenticated size record.
            _ = stored
            let journal = try pendingJournal(file, header: header, fileID: header.fileID, backingLength: st.size)
            return EncryptedFileInfo(
                header: header, metadata: metadata, metadataBody: best.body, metadataGeneration: best.gen,
                activeSlot: best.slot, backingLength: st.size, sizeRecordBytes: Array(head[64..<192]), journal: journal)
        }
    }

    /// Completes the interrupted overwrite of ``journal`` on `fd` (open for writing, under the exclusive lock):
    /// the stored bytes go in place again, then the record is cut off.
    mutating func completePendingWrite(_ fd: FileDescriptor, path: FilePath?) throws(EFSError) {
        guard let j = journal else { return }
        let dataOffset = Int64(header.dataOffset)
        try mapErrors(path, "cannot complete an interrupted write") {
            // An intact payload is put in place again; a torn one means the in-place write had not begun.
            if let payload = j.payload { try Sys.pwriteAll(fd, payload, at: dataOffset + Int64(j.target)) }
            try Sys.ftruncate(fd, dataOffset + Int64(j.regionAfterCompletion))
        }
        backingLength = dataOffset + Int64(j.regionAfterCompletion)
        journal = nil
    }

    /// Whether the file at `fd` starts with the encrypted-file magic.
    public static func hasMagic(_ fd: FileDescriptor) -> Bool {
        guard let b = try? Sys.pread(fd, count: FileHeader.magic.count, at: 0) else { return false }
        return FileHeader.hasMagic(b)
    }
}
