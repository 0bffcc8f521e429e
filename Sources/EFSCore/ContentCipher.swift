// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// The data-block layout of format v1 and the AEAD that protects it.
///
/// Plaintext is cut into 4096-byte blocks. Block `i` is stored at `dataOffset + i * 4124` as
/// `nonce(12) ‖ ciphertext(n) ‖ tag(16)`, sealed with AES-256-GCM under the file's content key, with associated
/// data `"EFS1BLK\0" ‖ fileID(16) ‖ i (u64 LE)`. Only the last block may be shorter than 4096. An all-zero stored
/// block is a hole (plaintext zeros) and is accepted only when the file's authenticated size record says the file
/// is sparse. `Documentation/file-format.md` §5.
public struct ContentCipher: Sendable {
    /// Plaintext bytes per block (v1: 4096, `blockShift` 12).
    public static let blockSize = 4_096
    public static let nonceSize = 12
    public static let tagSize = 16
    public static let overhead = nonceSize + tagSize
    /// Stored bytes per full block.
    public static let storedBlockSize = blockSize + overhead

    /// The content key's AES-256-GCM schedule, built once per file and shared by every copy of this value.
    let aead: AESGCMContext
    let fileID: FileID

    public init(_ fek: FileEncryptionKey) {
        self.aead = AESGCMContext(key: fek.contentKey)
        self.fileID = fek.fileID
    }

    @inline(__always)
    func associatedData(_ index: UInt64) -> [UInt8] {
        var aad = KeyLabels.blockAADPrefix
        aad.reserveCapacity(32)
        aad.append(contentsOf: fileID.bytes)
        for i in 0..<8 { aad.append(UInt8(truncatingIfNeeded: index >> (8 * UInt64(i)))) }
        return aad
    }

    /// Seals one block of at most ``blockSize`` bytes with a fresh random nonce; returns the stored form.
    public func seal(block index: UInt64, _ plaintext: some DataProtocol) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: Self.nonceSize)
        nonce.withUnsafeMutableBytes { AESGCMContext.randomBytes($0) }
        return seal(block: index, plaintext, nonce: nonce)
    }

    /// Seals with a caller-chosen nonce. Only known-answer tests may use this: a repeated nonce under one key
    /// breaks GCM.
    func unsafeUncheckedSeal(block index: UInt64, _ plaintext: some DataProtocol, nonce: [UInt8]) -> [UInt8] {
        seal(block: index, plaintext, nonce: nonce)
    }

    private func seal(block index: UInt64, _ plaintext: some DataProtocol, nonce: [UInt8]) -> [UInt8] {
        precondition(plaintext.count <= Self.blockSize, "block larger than the block size")
        precondition(nonce.count == Self.nonceSize, "a block nonce is 12 bytes")
        let plain = Array(plaintext)
        let aad = associatedData(index)
        // Stored form: nonce ‖ ciphertext ‖ tag, sealed straight into place.
        var out = [UInt8](repeating: 0, count: plain.count + Self.overhead)
        out.withUnsafeMutableBytes { o in
            nonce.withUnsafeBytes { o.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: Self.nonceSize) }
            plain.withUnsafeBytes { p in
                aad.withUnsafeBytes { a in
                    aead.seal(nonce: o.baseAddress!, aad: a, plaintext: p, into: o.baseAddress! + Self.nonceSize)
                }
            }
        }
        return out
    }

    /// Seals `count` consecutive blocks from `plaintext` into `output` (which must hold their stored form).
    ///
    /// The bulk path of whole-file encryption and of writes: the nonces for all blocks come from one call to
    /// ``nonceBytes(_:)`` instead of one system call per block, the associated data is built once and patched per
    /// block, and each block is sealed by the file's reused AES-GCM context straight into `output` (no allocation
    /// per block).
    public func sealBlocks(first: UInt64, plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        let bs = Self.blockSize
        let count = (plaintext.count + bs - 1) / bs
        precondition(output.count >= plaintext.count + count * Self.overhead, "output too small")
        guard count > 0 else { return }
        let nonces = Self.nonceBytes(count * Self.nonceSize)
        var aad = associatedData(first)
        nonces.withUnsafeBytes { nonceBytes in
            aad.withUnsafeMutableBytes { a in
                for i in 0..<count {
                    let index = first + UInt64(i)
                    for k in 0..<8 { a[24 + k] = UInt8(truncatingIfNeeded: index >> (8 * UInt64(k))) }
                    let from = i * bs
                    let to = min(plaintext.count, from + bs)
                    let out = output.baseAddress! + i * Self.storedBlockSize
                    // Invariant: from..<to lies in `plaintext`; out + stored length ≤ output.count (precondition).
                    out.copyMemory(from: nonceBytes.baseAddress! + i * Self.nonceSize, byteCount: Self.nonceSize)
                    aead.seal(
                        nonce: out, aad: UnsafeRawBufferPointer(a),
                        plaintext: UnsafeRawBufferPointer(rebasing: plaintext[from..<to]), into: out + Self.nonceSize)
                }
            }
        }
    }

    /// `count` random bytes for the nonces of one run of blocks, from BoringSSL's CTR-DRBG (seeded from the kernel
    /// once per thread) in one call.
    ///
    /// Measured on the 2-core machines: asking getrandom(2) for 6 KiB of nonces costs about 23 µs per call, and
    /// `SymmetricKey(size:)` and `AES._CTR.Nonce()` (which an earlier AES-CTR keystream here used) ask it for every
    /// 8 bytes, so a 4 KiB write through the mount paid six system calls for its one nonce.
    static func nonceBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { AESGCMContext.randomBytes($0) }
        return bytes
    }

    /// Opens `stored` (consecutive stored blocks starting at `first`) into `output`, which must hold their
    /// plaintext. Returns the index (relative to `first`) of the first block that fails, or nil if all pass.
    public func openBlocks(first: UInt64, stored: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, allowHole: Bool) -> Int? {
        var aad = associatedData(first)
        return aad.withUnsafeMutableBytes { a -> Int? in
            var i = 0
            var off = 0
            while off < stored.count {
                let len = min(Self.storedBlockSize, stored.count - off)
                guard len > Self.overhead else { return i }
                let index = first + UInt64(i)
                for k in 0..<8 { a[24 + k] = UInt8(truncatingIfNeeded: index >> (8 * UInt64(k))) }
                let block = UnsafeRawBufferPointer(rebasing: stored[off..<(off + len)])
                let plainLen = len - Self.overhead
                let dst = i * Self.blockSize
                guard dst + plainLen <= output.count else { return i }
                if allowHole, !block.contains(where: { $0 != 0 }) {
                    output.baseAddress!.advanced(by: dst).initializeMemory(as: UInt8.self, repeating: 0, count: plainLen)
                } else if !aead.open(
                    nonce: block.baseAddress!, aad: UnsafeRawBufferPointer(a),
                    sealed: UnsafeRawBufferPointer(rebasing: block[Self.nonceSize...]), into: output.baseAddress! + dst)
                {
                    return i
                }
                off += len
                i += 1
            }
            return nil
        }
    }

    /// Appends the stored form of `plaintext` (≤ one block) to `output`.
    public func seal(block index: UInt64, _ plaintext: some DataProtocol, into output: inout [UInt8]) {
        output.append(contentsOf: seal(block: index, plaintext))
    }

    /// Opens one stored block.
    ///
    /// - Parameter allowHole: whether an all-zero stored block reads as zeros (the file is sparse).
    /// - Throws: ``FormatError/authenticationFailed`` on any tampering, truncation or misplacement.
    public func open(block index: UInt64, _ stored: some Collection<UInt8>, allowHole: Bool) throws(FormatError) -> [UInt8] {
        guard stored.count >= Self.overhead, stored.count <= Self.storedBlockSize else { throw .authenticationFailed }
        if allowHole, !stored.contains(where: { $0 != 0 }) {
            return [UInt8](repeating: 0, count: stored.count - Self.overhead)
        }
        let block = Array(stored)
        let aad = associatedData(index)
        // One spare byte so an empty plaintext still has an output address.
        var plain = [UInt8](repeating: 0, count: block.count - Self.overhead + 1)
        let ok = plain.withUnsafeMutableBytes { p in
            block.withUnsafeBytes { b in
                aad.withUnsafeBytes { a in
                    aead.open(nonce: b.baseAddress!, aad: a, sealed: UnsafeRawBufferPointer(rebasing: b[Self.nonceSize...]), into: p.baseAddress!)
                }
            }
        }
        guard ok else { throw .authenticationFailed }
        plain.removeLast()
        return plain
    }

    /// The bare AES-256-GCM primitive the blocks use (``AESGCMContext``), for the Wycheproof vectors: opens
    /// `ciphertext ‖ tag`. Only 96-bit nonces exist in format v1.
    static func _openPrimitive(key: [UInt8], nonce: [UInt8], aad: [UInt8], ciphertext: [UInt8], tag: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == Self.nonceSize, tag.count == Self.tagSize else { return nil }
        let ctx = AESGCMContext(key: SymmetricKey(data: key))
        let sealed = ciphertext + tag
        var out = [UInt8](repeating: 0, count: ciphertext.count + 1)
        let ok = out.withUnsafeMutableBytes { o in
            nonce.withUnsafeBytes { n in
                aad.withUnsafeBytes { a in sealed.withUnsafeBytes { ctx.open(nonce: n.baseAddress!, aad: a, sealed: $0, into: o.baseAddress!) } }
            }
        }
        guard ok else { return nil }
        out.removeLast()
        return out
    }

    /// The bare AES-256-GCM primitive the blocks use, for the Wycheproof vectors: returns `ciphertext ‖ tag`.
    static func _sealPrimitive(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == Self.nonceSize else { return nil }
        let ctx = AESGCMContext(key: SymmetricKey(data: key))
        var out = [UInt8](repeating: 0, count: plaintext.count + Self.tagSize)
        out.withUnsafeMutableBytes { o in
            nonce.withUnsafeBytes { n in
                aad.withUnsafeBytes { a in plaintext.withUnsafeBytes { ctx.seal(nonce: n.baseAddress!, aad: a, plaintext: $0, into: o.baseAddress!) } }
            }
        }
        return out
    }

    /// swift-crypto's one-shot `AES.GCM.seal`, the reference the reused context is checked against in tests.
    static func _sealSwiftCrypto(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        let box = try! AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
        return Array(box.ciphertext) + Array(box.tag)
    }

    // MARK: - Layout arithmetic

    /// The stored length of a data region that holds `size` plaintext bytes.
    public static func storedLength(forPlaintextSize size: UInt64) -> UInt64 {
        let full = size / UInt64(blockSize)
        let rem = size % UInt64(blockSize)
        return full * UInt64(storedBlockSize) + (rem == 0 ? 0 : rem + UInt64(overhead))
    }

    /// The plaintext size a stored data region of `length` bytes holds, or nil when the length cannot be produced
    /// by any plaintext (a tail of 1…28 bytes: truncated inside a block's nonce and tag; no block is empty).
    public static func plaintextSize(forStoredLength length: UInt64) -> UInt64? {
        let full = length / UInt64(storedBlockSize)
        let rem = length % UInt64(storedBlockSize)
        if rem == 0 { return full * UInt64(blockSize) }
        guard rem > UInt64(overhead) else { return nil }
        return full * UInt64(blockSize) + rem - UInt64(overhead)
    }
}

/// Seals the value of an encrypted extended attribute (a named stream): AES-256-GCM under the FEK's stream key,
/// random 96-bit nonce, associated data `"EFS1XATTR\0" ‖ file id ‖ UTF-8 name`, stored as `nonce ‖ ct ‖ tag`.
/// Binding the name means a value moved to another attribute, or to another file, fails. `file-format.md` §5.5.
public struct NamedStreamCipher: Sendable {
    /// Largest value accepted (the Linux xattr value limit is 64 KiB; the stored form adds 28 bytes).
    public static let maximumValueSize = 65_536 - ContentCipher.overhead

    let key: SymmetricKey
    let fileID: FileID

    public init(_ fek: FileEncryptionKey) {
        key = fek.streamKey
        fileID = fek.fileID
    }

    func aad(_ name: String) -> [UInt8] { Array("EFS1XATTR".utf8) + [0] + fileID.bytes + Array(name.utf8) }

    public func seal(name: String, value: [UInt8]) -> [UInt8] {
        precondition(value.count <= Self.maximumValueSize)
        do {
            let box = try AES.GCM.seal(value, using: key, nonce: AES.GCM.Nonce(), authenticating: aad(name))
            return Array(box.combined!)
        } catch {
            preconditionFailure("AES-GCM seal with a valid key cannot fail: \(error)")
        }
    }

    public func open(name: String, stored: [UInt8]) throws(FormatError) -> [UInt8] {
        guard stored.count >= ContentCipher.overhead else { throw .authenticationFailed }
        do {
            let box = try AES.GCM.SealedBox(combined: stored)
            return Array(try AES.GCM.open(box, using: key, authenticating: aad(name)))
        } catch {
            throw .authenticationFailed
        }
    }
}
