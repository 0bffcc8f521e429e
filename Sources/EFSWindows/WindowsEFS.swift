// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// Constants and named limits of Windows EFS metadata (`$EFS`) and data encryption.
///
/// Sources: `windows-efs-metadata.md` §4 (MS-EFSR 2.2.2, 2.2.13 and notes, ntfs-3g `layout.h`/`efs.c`, ntfsdecrypt)
/// and `Documentation/windows-format.md`, which describes byte for byte what this module reads and writes.
///
/// ```swift
/// let metadata = try WindowsEFSMetadata.parse(efsBytes)
/// print(metadata.ddf.count, WindowsEFS.maximumMetadataLength)
/// ```
public enum WindowsEFS {
    /// §4.2: the fixed v1 header (Length … Reserved4); Data_Fields start here.
    public static let headerSize = 0x54
    /// §4.1: Ntfs.sys treats a `$EFS` of at most 0x54 bytes as invalid.
    public static let minimumMetadataLength = headerSize + 1
    /// §4.1: Windows limits metadata to 262,144 bytes (MS-EFSR <7>; ntfs-3g `layout.h`).
    public static let maximumMetadataLength = 0x40000
    /// §4.2: "In Data_Fields, unused gaps must not exceed 8 bytes."
    public static let maximumGap = 8
    /// Most entries in one key list (DDF or DRF); Windows' `nUsers` / `nCert_Hash` range is 0..500.
    public static let maximumEntriesPerList = Limits.maximumEntriesPerList
    /// Longest certificate thumbprint accepted (`EFS_HASH_BLOB.cbData` 0..100). Windows writes SHA-1, 20 bytes.
    public static let maximumThumbprintLength = Limits.maximumThumbprintSize
    /// Largest Certificate Data structure accepted (`EFS_CERTIFICATE_BLOB.cbData` 0..32768).
    public static let maximumCertificateDataLength = Limits.maximumCertificateSize
    /// §4.1: an Encrypted FEK structure must be at most 1,086 bytes (MS-EFSR <11>).
    public static let maximumEncryptedFEKLength = 1_086
    /// Most sub-authorities in a SID (`SID_MAX_SUB_AUTHORITIES`).
    public static let maximumSIDSubAuthorities = 15

    /// §4.2 Key list entry: Length, Public Key Information offset, Encrypted FEK length and offset, Flags.
    public static let keyEntryHeaderSize = 20
    /// §4.2 Public Key Information: Length, Owner Hint offset, type, Certificate Data length and offset, 8 reserved.
    public static let publicKeyInfoHeaderSize = 28
    /// §4.2 Certificate Data: thumbprint offset and length, container, provider and display name offsets.
    public static let certificateDataHeaderSize = 20
    /// §4.2: the Public Key Information type MS-EFSR fixes ("certificate thumbprint").
    public static let publicKeyInfoTypeThumbprint: UInt32 = 3

    /// §4.5: data is encrypted in independent 512-byte CBC units.
    public static let unitSize = 512
    /// §4.5: AES-256 IV = LE64(ivAESLow + offset) ‖ LE64(ivAESHigh + offset).
    public static let ivAESLow: UInt64 = 0x5816_657B_E916_1312
    public static let ivAESHigh: UInt64 = 0x1989_ADBE_4491_8961
    /// §4.5: DES / 3DES / DESX IV = LE64(ivDES + offset).
    public static let ivDES: UInt64 = 0x1691_1962_9891_AD13

    /// §4.4: the preamble of metadata version 3 (".pfile").
    public static let pfilePreamble: [UInt8] = Array(".pfile".utf8)

    /// `n` rounded up to a multiple of 512, or nil on overflow.
    public static func roundedToUnit(_ n: UInt64) -> UInt64? {
        let (sum, overflow) = n.addingReportingOverflow(UInt64(unitSize - 1))
        return overflow ? nil : sum / UInt64(unitSize) * UInt64(unitSize)
    }
}

/// The three metadata formats of `windows-efs-metadata.md` §4.2–§4.4, told apart by EFS_Version (or the ".pfile"
/// preamble). Only version 1 is parsed; the others are recognised and named in errors.
public enum WindowsMetadataFormat: Sendable, Hashable, CustomStringConvertible {
    /// EFS_Version 1, 2 or 3: RSA key lists (§4.2).
    case version1(efsVersion: UInt32)
    /// EFS_Version 4 or 5: EFSX datums, ECDH / DPAPI-NG protectors (§4.3).
    case version2(efsVersion: UInt32)
    /// EFS_Version 6 or the ".pfile" preamble: RMS-protected (§4.4).
    case version3

    public var description: String {
        switch self {
        case .version1(let v): "metadata version 1 (EFS_Version \(v))"
        case .version2(let v): "metadata version 2 (EFS_Version \(v), EFSX protectors)"
        case .version3: "metadata version 3 (.pfile, RMS)"
        }
    }

    /// Classifies `$EFS` bytes without parsing them. Nil when too short or the version is unknown.
    public static func classify(_ bytes: some Collection<UInt8>) -> WindowsMetadataFormat? {
        if bytes.starts(with: WindowsEFS.pfilePreamble) { return .version3 }
        var r = ByteReader(Array(bytes.prefix(12)))
        guard (try? r.skip(8)) != nil, let version = try? r.readUInt32() else { return nil }
        switch version {
        case 1...3: return .version1(efsVersion: version)
        case 4, 5: return .version2(efsVersion: version)
        case 6: return .version3
        default: return nil
        }
    }
}
