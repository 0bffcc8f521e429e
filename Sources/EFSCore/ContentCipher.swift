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

    let key: SymmetricKey
    let fileID: FileID

    public init(_ fek: FileEncryptionKey) {
        self.key = fek.contentKey
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
        seal(block: index, plaintext, nonce: AES.GCM.Nonce())
    }

    /// Seals with a caller-chosen nonce. Only known-answer tests may use this: a repeated nonce under one key
    /// breaks GCM.
    func unsafeUncheckedSeal(block index: UInt64, _ plaintext: some DataProtocol, nonce: [UInt8]) -> [UInt8] {
        seal(block: index, plaintext, nonce: try! AES.GCM.Nonce(data: nonce))
    }

    func seal(block index: UInt64, _ plaintext: some DataProtocol, nonce: AES.GCM.Nonce) -> [UInt8] {
        precondition(plaintext.count <= Self.blockSize, "block larger than the block size")
        do {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: associatedData(index))
            // `combined` is nonce ‖ ciphertext ‖ tag for the default 12-byte nonce.
            guard let combined = box.combined else { preconditionFailure("12-byte nonce has a combined form") }
            return Array(combined)
        } catch {
            preconditionFailure("AES-GCM seal with a valid 256-bit key cannot fail: \(error)")
        }
    }

    /// Seals `count` consecutive blocks from `plaintext` into `output` (which must hold their stored form).
    ///
    /// The bulk path of whole-file encryption: the nonces for all blocks come from one call to the random number
    /// generator (BoringSSL's DRBG, seeded from the kernel) instead of one system call per block, and the
    /// associated data is built once and patched per block.
    public func sealBlocks(first: UInt64, plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        let bs = Self.blockSize
        let count = (plaintext.count + bs - 1) / bs
        precondition(output.count >= plaintext.count + count * Self.overhead, "output too small")
        guard count > 0 else { return }
        let nonces = Self.nonceBytes(count * Self.nonceSize)
        var aad = associatedData(first)
        nonces.withUnsafeBytes { nonceBytes in
            for i in 0..<count {
                let index = first + UInt64(i)
                for k in 0..<8 { aad[24 + k] = UInt8(truncatingIfNeeded: index >> (8 * UInt64(k))) }
                let from = i * bs
                let to = min(plaintext.count, from + bs)
                // Invariant: from..<to lies in `plaintext`; the nonce slice lies in `nonceBytes`.
                let nonce = try! AES.GCM.Nonce(data: UnsafeRawBufferPointer(rebasing: nonceBytes[(i * Self.nonceSize)..<((i + 1) * Self.nonceSize)]))
                let box: AES.GCM.SealedBox
                do {
                    box = try AES.GCM.seal(UnsafeRawBufferPointer(rebasing: plaintext[from..<to]), using: key, nonce: nonce, authenticating: aad)
                } catch {
                    preconditionFailure("AES-GCM seal with a valid 256-bit key cannot fail: \(error)")
                }
                let out = i * Self.storedBlockSize
                // Invariant: out + stored length ≤ output.count, checked by the precondition above.
                nonce.withUnsafeBytes { output.baseAddress!.advanced(by: out).copyMemory(from: $0.baseAddress!, byteCount: Self.nonceSize) }
                box.ciphertext.withUnsafeBytes {
                    if $0.count > 0 { output.baseAddress!.advanced(by: out + Self.nonceSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                }
                box.tag.withUnsafeBytes {
                    output.baseAddress!.advanced(by: out + Self.nonceSize + to - from).copyMemory(from: $0.baseAddress!, byteCount: Self.tagSize)
                }
            }
        }
    }

    /// `count` random bytes for the nonces of one run of blocks: the AES-256-CTR keystream under a fresh random key
    /// and a fresh random counter block, both from the system generator (the CTR_DRBG idea of NIST SP 800-90A,
    /// without reseeding inside one run of at most a few thousand blocks).
    ///
    /// Measured on the 2-core machines: asking getrandom(2) for 6 KiB of nonces costs about 23 µs per call and, with
    /// both cores sealing, showed up as 6 % of an encryptFile profile (`crng_make_state`); this costs one 32-byte
    /// getrandom and a few microseconds of AES.
    static func nonceBytes(_ count: Int) -> Data {
        do {
            return try AES._CTR.encrypt([UInt8](repeating: 0, count: count), using: SymmetricKey(size: .bits256), nonce: AES._CTR.Nonce())
        } catch {
            preconditionFailure("AES-CTR with a valid 256-bit key cannot fail: \(error)")
        }
    }

    /// Opens `stored` (consecutive stored blocks starting at `first`) into `output`, which must hold their
    /// plaintext. Returns the index (relative to `first`) of the first block that fails, or nil if all pass.
    public func openBlocks(first: UInt64, stored: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, allowHole: Bool) -> Int? {
        var aad = associatedData(first)
        var i = 0
        var off = 0
        while off < stored.count {
            let len = min(Self.storedBlockSize, stored.count - off)
            guard len > Self.overhead else { return i }
            let index = first + UInt64(i)
            for k in 0..<8 { aad[24 + k] = UInt8(truncatingIfNeeded: index >> (8 * UInt64(k))) }
            let block = UnsafeRawBufferPointer(rebasing: stored[off..<(off + len)])
            let plainLen = len - Self.overhead
            let dst = i * Self.blockSize
            guard dst + plainLen <= output.count else { return i }
            if allowHole, !block.contains(where: { $0 != 0 }) {
                output.baseAddress!.advanced(by: dst).initializeMemory(as: UInt8.self, repeating: 0, count: plainLen)
            } else {
                do {
                    let box = try AES.GCM.SealedBox(
                        nonce: AES.GCM.Nonce(data: UnsafeRawBufferPointer(rebasing: block[0..<Self.nonceSize])),
                        ciphertext: UnsafeRawBufferPointer(rebasing: block[Self.nonceSize..<(Self.nonceSize + plainLen)]),
                        tag: UnsafeRawBufferPointer(rebasing: block[(len - Self.tagSize)...]))
                    let plain = try AES.GCM.open(box, using: key, authenticating: aad)
                    plain.withUnsafeBytes {
                        if $0.count > 0 { output.baseAddress!.advanced(by: dst).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    }
                } catch {
                    return i
                }
            }
            off += len
            i += 1
        }
        return nil
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
        do {
            let box = try AES.GCM.SealedBox(combined: Array(stored))
            return Array(try AES.GCM.open(box, using: key, authenticating: associatedData(index)))
        } catch {
            throw .authenticationFailed
        }
    }

    /// The bare AES-256-GCM primitive, for the Wycheproof vectors: opens `ciphertext ‖ tag`.
    static func _openPrimitive(key: [UInt8], nonce: [UInt8], aad: [UInt8], ciphertext: [UInt8], tag: [UInt8]) -> [UInt8]? {
        guard let n = try? AES.GCM.Nonce(data: nonce),
            let box = try? AES.GCM.SealedBox(nonce: n, ciphertext: ciphertext, tag: tag),
            let pt = try? AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: aad)
        else { return nil }
        return Array(pt)
    }

    /// The bare AES-256-GCM primitive, for the Wycheproof vectors: returns `ciphertext ‖ tag`.
    static func _sealPrimitive(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        guard let n = try? AES.GCM.Nonce(data: nonce),
            let box = try? AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: n, authenticating: aad)
        else { return nil }
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
