// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Named maximums for every count and length in the formats. Hostile input can never make memory or time grow
/// beyond these. See `Documentation/file-format.md` §6.
public enum Limits {
    /// Largest certificate accepted in a DDF/DRF entry. Windows: `EFS_CERTIFICATE_BLOB.cbData` range 0..32768.
    public static let maximumCertificateSize = 32_768
    /// Largest thumbprint length accepted. Windows: `EFS_HASH_BLOB.cbData` range 0..100. v1 writes SHA-1 (20).
    public static let maximumThumbprintSize = 100
    /// Most entries in one key list (DDF or DRF). Windows: `nCert_Hash` / `nUsers` range 0..500.
    public static let maximumEntriesPerList = 500
    /// Largest wrapped FEK: RSA-4096 OAEP gives 512 bytes; HPKE P-384 gives 97 + 48.
    public static let maximumWrappedKeySize = 1_024
    /// Largest encoded metadata body (DDF + DRF + MAC). Bounds the metadata slot too.
    public static let maximumMetadataSize = 4 * 1_048_576
    /// Largest metadata slot capacity a header may declare.
    public static let maximumSlotCapacity = maximumMetadataSize + 4_096
    /// Largest key-store file we read (a PEM certificate or key).
    public static let maximumKeyFileSize = 1_048_576
    /// Largest plaintext file size: blocks are numbered with UInt64, but offsets must fit Int64 on disk.
    public static let maximumPlaintextSize: UInt64 = 1 << 60
}
