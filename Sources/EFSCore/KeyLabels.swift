// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Every HKDF `info` label and every domain-separation constant of format v1, in one place.
///
/// Changing any of these changes the format: they are frozen for v1. `Documentation/file-format.md` §4.
public enum KeyLabels {
    /// HKDF info for the per-file content key (AES-256-GCM over data blocks).
    public static let fileContent = Array("swift-efs v1 file content".utf8)
    /// HKDF info for the key that authenticates the size record.
    public static let sizeRecord = Array("swift-efs v1 size record".utf8)
    /// HKDF info for the key that authenticates the metadata (DDF/DRF) body.
    public static let metadataMAC = Array("swift-efs v1 metadata mac".utf8)
    /// HKDF info for the key that encrypts named streams (extended attributes).
    public static let streamXattr = Array("swift-efs v1 stream xattr".utf8)
    /// HPKE `info` used when wrapping a FEK for an EC recipient.
    public static let hpkeWrapInfo = Array("swift-efs v1 fek wrap".utf8)
    /// HPKE `info` of a shared encapsulation, whose exporter wraps many FEKs (algorithms 4 and 5).
    public static let hpkeSharedWrapInfo = Array("swift-efs v1 fek wrap shared".utf8)

    /// Associated-data prefix of every data block: "EFS1BLK" and a zero byte.
    public static let blockAADPrefix: [UInt8] = Array("EFS1BLK".utf8) + [0]
    /// MAC input prefix of the size record.
    public static let sizeRecordMACPrefix = Array("EFS1SIZE".utf8)
    /// MAC input prefix of the metadata body.
    public static let metadataMACPrefix = Array("EFS1META".utf8)
}
