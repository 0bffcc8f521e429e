// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// The fixed 64-byte header at offset 0 of every encrypted backing file (format v1).
///
/// ```
/// 0   8  magic 89 45 46 53 0D 0A 1A 0A
/// 8   2  format version (1)
/// 10  2  flags (none defined in v1; any set bit is refused)
/// 12  1  block shift (12: 4096-byte plaintext blocks)
/// 13  1  cipher (1: AES-256-GCM, 96-bit random nonce, 128-bit tag)
/// 14  2  reserved, zero
/// 16  16 file id (random, not all zero)
/// 32  4  metadata slot capacity (multiple of 4096)
/// 36  12 reserved, zero
/// 48  16 checksum: SHA-256 of bytes 0..<48, first 16 bytes
/// ```
/// `Documentation/file-format.md` §2.
public struct FileHeader: Hashable, Sendable {
    public static let magic: [UInt8] = [0x89, 0x45, 0x46, 0x53, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let size = 64
    public static let currentVersion: UInt16 = 1
    /// Flags known to this build (v1 defines none).
    public static let knownFlags: UInt16 = 0
    public static let blockShift: UInt8 = 12
    public static let cipherAES256GCM: UInt8 = 1
    /// Size records live at 64 and 128; the first metadata slot starts at 4096.
    public static let sizeRecordOffsets = [64, 128]
    public static let firstSlotOffset = 4_096
    public static let slotAlignment = 4_096
    /// Slot capacity used for new files unless the metadata needs more.
    public static let defaultSlotCapacity = 8_192

    public var fileID: FileID
    public var slotCapacity: Int

    public init(fileID: FileID, slotCapacity: Int) {
        precondition(slotCapacity % Self.slotAlignment == 0 && slotCapacity <= Limits.maximumSlotCapacity)
        self.fileID = fileID
        self.slotCapacity = slotCapacity
    }

    /// The capacity a new file gets for metadata of `metadataSize` bytes: room to double, at least 8 KiB.
    public static func slotCapacity(forMetadataSize metadataSize: Int) -> Int {
        let need = max(defaultSlotCapacity, 2 * (metadataSize + MetadataSlot.headerSize))
        let rounded = (need + slotAlignment - 1) / slotAlignment * slotAlignment
        return min(rounded, Limits.maximumSlotCapacity)
    }

    /// Offset of metadata slot 0 or 1.
    public func slotOffset(_ slot: Int) -> Int { Self.firstSlotOffset + slot * slotCapacity }
    /// Offset of the first data block.
    public var dataOffset: Int { Self.firstSlotOffset + 2 * slotCapacity }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.write(bytes: Self.magic)
        w.write(Self.currentVersion)
        w.write(UInt16(0))
        w.write(Self.blockShift)
        w.write(Self.cipherAES256GCM)
        w.write(UInt16(0))
        w.write(bytes: fileID.bytes)
        w.write(UInt32(slotCapacity))
        w.writeZeros(12)
        let sum = SHA256.hash(data: w.bytes)
        w.write(bytes: Array(sum)[0..<16])
        return w.bytes
    }

    /// Whether `prefix` starts with the v1 magic. Used to tell encrypted files from plain ones.
    public static func hasMagic(_ prefix: some Collection<UInt8>) -> Bool {
        prefix.count >= magic.count && prefix.prefix(magic.count).elementsEqual(magic)
    }

    /// Decodes and validates the header. `Documentation/file-format.md` §2.
    public init(decoding bytes: some Collection<UInt8>) throws(FormatError) {
        let all = Array(bytes.prefix(Self.size))
        guard Self.hasMagic(all) else {
            if all.count < Self.magic.count { throw .truncated("header magic") }
            throw FormatError(.badMagic, "not a swift-efs encrypted file (bad magic)")
        }
        guard all.count == Self.size else { throw .truncated("file header") }
        var r = ByteReader(all)
        try r.skip(8, "magic")
        // §2: version, then flags; unknown versions and flags are refused before anything else is trusted.
        let version = try r.readUInt16("version")
        guard version == Self.currentVersion else {
            throw FormatError(.unsupportedVersion, "file format version \(version) is not supported (this build reads 1)")
        }
        let flags = try r.readUInt16("flags")
        guard flags & ~Self.knownFlags == 0 else {
            throw FormatError(.unknownFlags, "file header has unknown flags 0x\(String(flags, radix: 16))")
        }
        // §2: checksum over bytes 0..<48 catches torn or corrupted headers before the fields are used.
        let sum = SHA256.hash(data: all[0..<48])
        guard constantTimeEquals(Array(sum)[0..<16], all[48..<64]) else {
            throw FormatError(.checksumMismatch, "file header checksum mismatch (corrupt header)")
        }
        let shift = try r.readUInt8("block shift")
        guard shift == Self.blockShift else {
            throw FormatError(.unsupportedAlgorithm, "block shift \(shift) is not supported (v1 uses 12)")
        }
        let cipher = try r.readUInt8("cipher")
        guard cipher == Self.cipherAES256GCM else {
            throw FormatError(.unsupportedAlgorithm, "cipher \(cipher) is not supported (v1 uses 1, AES-256-GCM)")
        }
        guard try r.readUInt16("reserved") == 0 else { throw .malformed("reserved header field is not zero") }
        self.fileID = try FileID(bytes: try r.readBytes(16, "file id"))
        let cap = try r.readLength(width: 4, maximum: Limits.maximumSlotCapacity, minimum: 4_096, "slot capacity")
        guard cap % Self.slotAlignment == 0 else { throw .malformed("slot capacity \(cap) is not a multiple of 4096") }
        self.slotCapacity = cap
        guard try r.readBytes(12, "reserved").allSatisfy({ $0 == 0 }) else {
            throw .malformed("reserved header bytes are not zero")
        }
    }
}
