// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// One of the two metadata slots. Changing users writes the inactive slot with a higher generation; a crash while
/// writing leaves a slot whose checksum fails, and readers fall back to the other one.
///
/// ```
/// 0   4  magic "EFSM"
/// 4   4  body length L
/// 8   8  generation (u64, ≥ 1)
/// 16  16 checksum: SHA-256(bytes 0..<16 ‖ body), first 16 bytes
/// 32  L  body (``FileMetadata``)
/// ```
/// `Documentation/file-format.md` §4.1.
public enum MetadataSlot {
    public static let magic: [UInt8] = Array("EFSM".utf8)
    public static let headerSize = 32

    public static func encode(body: [UInt8], generation: UInt64) -> [UInt8] {
        precondition(generation > 0 && body.count <= Limits.maximumMetadataSize)
        var w = ByteWriter(capacity: headerSize + body.count)
        w.write(bytes: magic)
        w.write(UInt32(body.count))
        w.write(generation)
        var h = SHA256()
        h.update(data: w.bytes)
        h.update(data: body)
        w.write(bytes: Array(h.finalize())[0..<16])
        w.write(bytes: body)
        return w.bytes
    }

    /// Reads the fixed slot header; returns the generation and body length, or nil for an empty (all-zero) slot.
    public static func decodeHeader(_ bytes: some Collection<UInt8>, capacity: Int) throws(FormatError) -> (generation: UInt64, length: Int)? {
        let all = Array(bytes.prefix(headerSize))
        guard all.count == headerSize else { throw .truncated("metadata slot header") }
        if all.allSatisfy({ $0 == 0 }) { return nil }
        var r = ByteReader(all)
        guard try r.readBytes(4, "slot magic").elementsEqual(magic) else {
            throw FormatError(.badMagic, "metadata slot has a bad signature")
        }
        let length = try r.readLength(width: 4, maximum: min(Limits.maximumMetadataSize, capacity - headerSize), "metadata length")
        let gen = try r.readUInt64("slot generation")
        guard gen > 0 else { throw .malformed("metadata slot generation is zero") }
        return (gen, length)
    }

    /// Verifies a whole slot (header + body) and returns its body.
    public static func decode(_ bytes: some Collection<UInt8>, capacity: Int) throws(FormatError) -> (generation: UInt64, body: [UInt8])? {
        let all = Array(bytes)
        guard let (gen, length) = try decodeHeader(all, capacity: capacity) else { return nil }
        guard all.count >= headerSize + length else { throw .truncated("metadata body") }
        let body = Array(all[headerSize..<(headerSize + length)])
        var h = SHA256()
        h.update(data: all[0..<16])
        h.update(data: body)
        guard constantTimeEquals(Array(h.finalize())[0..<16], all[16..<32]) else {
            throw FormatError(.checksumMismatch, "metadata slot checksum mismatch")
        }
        return (gen, body)
    }
}
