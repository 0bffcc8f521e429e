// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// A file's File Encryption Key (FEK) and the subkeys derived from it.
///
/// The FEK is 256 random bits held in a `SymmetricKey`, whose storage is zeroed when released. Each purpose gets
/// its own HKDF-SHA256 subkey (salt = file id, info = a label from ``KeyLabels``), so no key is ever used for two
/// things. There is deliberately no `description` that prints bytes.
///
/// ```swift
/// let fek = FileEncryptionKey.generate(fileID: id)
/// let cipher = fek.contentCipher
/// ```
public struct FileEncryptionKey: Sendable {
    /// The FEK itself. Only key wrapping sees it.
    let key: SymmetricKey
    public let fileID: FileID
    /// AES-256-GCM key for the data blocks.
    let contentKey: SymmetricKey
    /// HMAC-SHA256 key for the size record.
    let sizeKey: SymmetricKey
    /// HMAC-SHA256 key for the metadata body.
    let metadataKey: SymmetricKey
    /// AES-256-GCM key for named streams.
    let streamKey: SymmetricKey

    /// Makes a new random FEK, from BoringSSL's generator in one call (`SymmetricKey(size:)` asks getrandom(2) for
    /// every 8 bytes; the mount makes one FEK per file it creates).
    public static func generate(fileID: FileID) -> FileEncryptionKey {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 8)
        defer {
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.deallocate()
        }
        AESGCMContext.randomBytes(raw)
        return FileEncryptionKey(key: SymmetricKey(data: UnsafeRawBufferPointer(raw)), fileID: fileID)
    }

    init(key: SymmetricKey, fileID: FileID) {
        precondition(key.bitCount == 256, "FEK must be 256 bits")
        self.key = key
        self.fileID = fileID
        // HKDF-SHA256(FEK, salt = file id, info = label, 32) for each subkey (file-format.md §4, "Keys"). The extract step
        // depends only on the key and the salt, so it is done once and the four subkeys are its expansions
        // (RFC 5869 §2.2–2.3): the same keys as four full derivations, with five HMACs instead of eight.
        let prk = key.withUnsafeBytes { ikm in
            fileID.bytes.withUnsafeBytes { HMACState.extract(.sha256, salt: $0, ikm: ikm) }
        }
        func derive(_ info: [UInt8]) -> SymmetricKey { HMACState.expand(.sha256, prk: prk, info: info, count: 32) }
        self.contentKey = derive(KeyLabels.fileContent)
        self.sizeKey = derive(KeyLabels.sizeRecord)
        self.metadataKey = derive(KeyLabels.metadataMAC)
        self.streamKey = derive(KeyLabels.streamXattr)
    }

    /// Rebuilds a FEK from unwrapped bytes. Throws if the length is not 32.
    init(unwrapped bytes: some ContiguousBytes, fileID: FileID) throws(FormatError) {
        let key = SymmetricKey(data: bytes)
        guard key.bitCount == 256 else { throw .authenticationFailed }
        self.init(key: key, fileID: fileID)
    }

    /// The same FEK bound to another file id (used when a file gets a fresh identity but keeps its key).
    public func rebinding(to fileID: FileID) -> FileEncryptionKey { FileEncryptionKey(key: key, fileID: fileID) }

    /// Constant-time comparison of two FEKs.
    public func hasSameKey(as other: FileEncryptionKey) -> Bool { key == other.key }

    func mac(_ key: SymmetricKey, _ parts: [UInt8]...) -> [UInt8] {
        let h = HMACState(.sha256, key: key)
        for p in parts { h.update(p) }
        return h.finalize()
    }
}

/// A random 128-bit file identity, bound into every block's associated data.
public struct FileID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: some Collection<UInt8>) throws(FormatError) {
        let b = Array(bytes)
        guard b.count == 16 else { throw .malformed("file id must be 16 bytes") }
        guard b.contains(where: { $0 != 0 }) else { throw .malformed("file id is all zero") }
        self.bytes = b
    }

    /// A new random file id.
    public static func random() -> FileID {
        var b = [UInt8](repeating: 0, count: 16)
        while true {
            b.withUnsafeMutableBytes { AESGCMContext.randomBytes($0) }
            if let id = try? FileID(bytes: b) { return id }
        }
    }

    public var description: String { Hex.encode(bytes) }
}

/// Constant-time equality of two byte strings (XOR-accumulate, like swift-crypto's `constantTimeCompare`).
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var acc: UInt8 = 0
    for (x, y) in zip(a, b) { acc |= x ^ y }
    return acc == 0
}

/// Hex helpers.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> String {
        let digits: [UInt8] = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Upper-case hex in groups of four digits, e.g. `1A2B 3C4D …`: the form `cipher /c` prints thumbprints in.
    public static func grouped(_ bytes: some Sequence<UInt8>) -> String {
        let h = Array(encode(bytes, uppercase: true))
        return stride(from: 0, to: h.count, by: 4).map { String(h[$0..<min($0 + 4, h.count)]) }.joined(separator: " ")
    }

    /// Decodes hex, ignoring spaces and colons. Returns nil on any other character or an odd digit count.
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: ":"): continue
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return high == nil ? out : nil
    }
}
