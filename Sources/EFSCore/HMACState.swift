// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

// BoringSSL's HMAC (module `CCryptoBoringSSL`, vendored by swift-crypto), as in AESGCMContext.swift: these two
// files are the only places that call BoringSSL directly.
import CCryptoBoringSSL
import Crypto

/// HMAC-SHA256 or HMAC-SHA384 through BoringSSL's `HMAC_CTX`, and the HKDF steps (RFC 5869) built on it.
///
/// swift-crypto's `HMAC` and `HKDF` are written in Swift over its hash types and cost several microseconds per
/// HMAC of a few dozen bytes (key padding in Swift arrays, a `SymmetricKey` per step, generic dispatch). A new file
/// needs about ten: five for its subkeys (``FileEncryptionKey``), the metadata and size-record MACs, and one HPKE
/// export per wrapped key. In the mount's untar profile they were about 40 % of a create's CPU time. The results
/// are the same bytes (RFC 2104 and RFC 5869; the known-answer tests of the format and of HPKE check them).
///
/// The context is erased when released (`HMAC_CTX_cleanup` cleanses it; BoringSSL's `OPENSSL_free` zeroes what it
/// frees).
struct HMACState: ~Copyable {
    enum Hash { case sha256, sha384 }

    private let ctx: UnsafeMutablePointer<HMAC_CTX>
    /// The MAC's length in bytes (32 or 48).
    let size: Int

    init(_ hash: Hash, key: UnsafeRawBufferPointer) {
        ctx = Self.start(hash, key: key)
        size = hash == .sha256 ? 32 : 48
    }

    init(_ hash: Hash, key: SymmetricKey) {
        ctx = key.withUnsafeBytes { Self.start(hash, key: $0) }
        size = hash == .sha256 ? 32 : 48
    }

    private static func start(_ hash: Hash, key: UnsafeRawBufferPointer) -> UnsafeMutablePointer<HMAC_CTX> {
        let ctx = UnsafeMutablePointer<HMAC_CTX>.allocate(capacity: 1)
        CCryptoBoringSSL_HMAC_CTX_init(ctx)
        let md = hash == .sha256 ? CCryptoBoringSSL_EVP_sha256() : CCryptoBoringSSL_EVP_sha384()
        // Fails only on allocation failure; BoringSSL accepts keys of any length, the empty key included.
        guard CCryptoBoringSSL_HMAC_Init_ex(ctx, key.baseAddress, key.count, md, nil) == 1 else {
            preconditionFailure("HMAC_Init_ex failed: out of memory")
        }
        return ctx
    }

    deinit {
        CCryptoBoringSSL_HMAC_CTX_cleanup(ctx)
        ctx.deallocate()
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = CCryptoBoringSSL_HMAC_Update(ctx, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    }

    func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The MAC.
    consuming func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var length: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = CCryptoBoringSSL_HMAC_Final(ctx, $0.baseAddress, &length) }
        return out
    }

    /// The first `count` bytes of the MAC (all when nil) as a key; the temporary copy is zeroed.
    consuming func finalizeKey(count: Int? = nil) -> SymmetricKey {
        let n = count ?? size
        precondition(n <= size)
        return withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { raw in
            var length: UInt32 = 0
            _ = CCryptoBoringSSL_HMAC_Final(ctx, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
            defer { raw.initializeMemory(as: UInt8.self, repeating: 0) }
            return SymmetricKey(data: UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        }
    }

    /// HKDF-Extract(salt, ikm) = HMAC(salt, ikm) (RFC 5869 §2.2).
    static func extract(_ hash: Hash, salt: UnsafeRawBufferPointer, ikm: UnsafeRawBufferPointer) -> SymmetricKey {
        let h = HMACState(hash, key: salt)
        h.update(ikm)
        return h.finalizeKey()
    }

    /// HKDF-Expand(prk, info, L) for L up to the hash length (RFC 5869 §2.3: T(1) = HMAC(prk, info ‖ 0x01), its
    /// first L bytes). Every expansion in format v1 and in HPKE's key schedule is that short.
    static func expand(_ hash: Hash, prk: SymmetricKey, info: [UInt8], count: Int) -> SymmetricKey {
        let h = HMACState(hash, key: prk)
        h.update(info)
        h.update([1])
        return h.finalizeKey(count: count)
    }
}
