//! Capture files: pcap and pcapng read into memory, pcap written, with the `pcap-file` crate
//! (its slice parsers: its readers allocate an 8 MB buffer each).
//!
//! Only Ethernet captures (`LINKTYPE_ETHERNET`, 1) are accepted: the program types bpfkit runs
//! on packets (socket filters on packet sockets, tc, XDP) all see an Ethernet frame. A pcapng
//! file may hold several interfaces; each must be Ethernet.

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness};
use std::io::Write;
use std::time::Duration;

/// A capture file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The bytes are neither pcap nor pcapng, or are malformed.
    #[error("packet {index}: {reason}")]
    Malformed {
        /// Index of the packet (or block) being read when the error occurred.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The capture's link type is not Ethernet.
    #[error("link type {0} is not supported (only Ethernet, LINKTYPE 1)")]
    LinkType(String),
    /// Writing failed.
    #[error("writing the capture: {0}")]
    Write(String),
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time since the epoch.
    pub timestamp: Duration,
    /// The frame's length on the wire (may exceed `data.len()` when the capture was cut).
    pub orig_len: u32,
    /// The captured bytes, from the Ethernet header.
    pub data: Vec<u8>,
}

/// pcapng's section header block type, the first four bytes of the file.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads every frame of a pcap or pcapng capture (told apart by their magic numbers).
///
/// # Errors
/// [`CaptureError::Malformed`] naming the packet that could not be read, or
/// [`CaptureError::LinkType`] for a non-Ethernet capture.
pub fn read_capture(bytes: &[u8]) -> Result<Vec<Frame>, CaptureError> {
    if bytes.get(..4) == Some(&PCAPNG_MAGIC[..]) {
        read_pcapng(bytes)
    } else {
        read_pcap(bytes)
    }
}

fn malformed(index: usize, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Malformed {
        index,
        reason: e.to_string(),
    }
}

fn read_pcap(bytes: &[u8]) -> Result<Vec<Frame>, CaptureError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| CaptureError::Malformed {
        index: 0,
        reason: format!("not a pcap or pcapng file: {e}"),
    })?;
    let link = parser.header().datalink;
    if link != DataLink::ETHERNET {
        return Err(CaptureError::LinkType(format!("{link:?}")));
    }
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (next, p) = parser
            .next_packet(rest)
            .map_err(|e| malformed(frames.len(), e))?;
        rest = next;
        frames.push(Frame {
            timestamp: p.timestamp,
            orig_len: p.orig_len,
            data: p.data.into_owned(),
        });
    }
    Ok(frames)
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<Frame>, CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| malformed(0, e))?;
    let mut frames = Vec::new();
    // The timestamp resolution of each interface of the current section, by interface id.
    let mut resolutions: Vec<u8> = Vec::new();
    while !rest.is_empty() {
        let (next, block) = parser
            .next_block(rest)
            .map_err(|e| malformed(frames.len(), e))?;
        rest = next;
        match block {
            Block::SectionHeader(_) => resolutions.clear(),
            Block::InterfaceDescription(idb) => {
                if idb.linktype != DataLink::ETHERNET {
                    return Err(CaptureError::LinkType(format!("{:?}", idb.linktype)));
                }
                resolutions.push(ts_resol(&idb));
            }
            Block::EnhancedPacket(p) => {
                let resol = resolutions
                    .get(p.interface_id as usize)
                    .copied()
                    .ok_or_else(|| {
                        malformed(
                            frames.len(),
                            format!("interface {} was not described", p.interface_id),
                        )
                    })?;
                frames.push(Frame {
                    timestamp: epb_time(p.timestamp, resol),
                    orig_len: p.original_len,
                    data: p.data.into_owned(),
                });
            }
            Block::SimplePacket(p) => frames.push(Frame {
                timestamp: Duration::ZERO,
                orig_len: p.original_len,
                data: p.data.into_owned(),
            }),
            _ => {}
        }
    }
    Ok(frames)
}

/// The `if_tsresol` option of an interface (default 6: microseconds).
fn ts_resol(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock,
) -> u8 {
    idb.options
        .iter()
        .find_map(|o| match o {
            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
            _ => None,
        })
        .unwrap_or(6)
}

/// An Enhanced Packet Block's time. `pcap-file` 2 reports the raw 64-bit tick count as
/// nanoseconds whatever the interface's resolution; this converts ticks of `10^-r` seconds
/// (or `2^-(r & 0x7f)` when the high bit is set) to a duration, as pcapng defines them.
fn epb_time(raw: Duration, resol: u8) -> Duration {
    let ticks = raw.as_nanos();
    let nanos = if resol & 0x80 == 0 {
        let exp = u32::from(resol);
        if exp <= 9 {
            ticks * 10u128.pow(9 - exp)
        } else {
            ticks / 10u128.checked_pow(exp - 9).unwrap_or(u128::MAX)
        }
    } else {
        let shift = u32::from(resol & 0x7f).min(127);
        (ticks * 1_000_000_000) >> shift
    };
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Writes `frames` as a little-endian, microsecond pcap file of Ethernet frames.
///
/// # Errors
/// [`CaptureError::Write`] when the writer fails.
pub fn write_pcap<W: Write>(out: W, frames: &[Frame]) -> Result<(), CaptureError> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w =
        PcapWriter::with_header(out, header).map_err(|e| CaptureError::Write(e.to_string()))?;
    for f in frames {
        let orig_len = f
            .orig_len
            .max(u32::try_from(f.data.len()).unwrap_or(u32::MAX));
        w.write_packet(&PcapPacket::new(f.timestamp, orig_len, &f.data))
            .map_err(|e| CaptureError::Write(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    use super::*;

    #[test]
    fn pcap_round_trips_and_garbage_is_an_error() {
        let frames = vec![
            Frame {
                timestamp: Duration::from_micros(1_500_000),
                orig_len: 60,
                data: (0..60).collect(),
            },
            Frame {
                timestamp: Duration::from_micros(2_000_001),
                orig_len: 100,
                data: vec![0xab; 42],
            },
        ];
        let mut buf = Vec::new();
        write_pcap(&mut buf, &frames).unwrap();
        // The classic pcap header: magic a1b2c3d4 little endian, version 2.4, linktype 1.
        assert_eq!(&buf[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&buf[20..24], &1u32.to_le_bytes());
        assert_eq!(read_capture(&buf).unwrap(), frames);
        assert!(read_capture(b"hello world, not a capture").is_err());
        assert!(read_capture(&buf[..buf.len() - 5]).is_err());
        assert!(read_capture(&[]).is_err());
    }
}
