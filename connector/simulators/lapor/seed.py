"""Seeded, realistic LAPOR! data: institutions, categories, templates and complaints in every state."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

STATUS_NAMES = {
    "unverified": "Belum Terverifikasi",
    "postponed": "Ditunda",
    "verified": "Terverifikasi",
    "in_process": "Dalam Proses",
    "done": "Selesai",
    "archived": "Diarsipkan",
    "rejected": "Ditolak",
}
TERMINAL = frozenset({"done", "archived", "rejected"})

CLASSIFICATIONS = [
    {"id": 1, "name": "Aspirasi"},
    {"id": 2, "name": "Pengaduan"},
    {"id": 3, "name": "Permintaan Informasi"},
    {"id": 4, "name": "Whistle Blowing System"},
    {"id": 5, "name": "Pengadaan"},
]

INSTITUTIONS = [
    (1, "Kementerian Agraria dan Tata Ruang/Badan Pertanahan Nasional", 0),
    (146, "Kantor Wilayah BPN Provinsi Jawa Barat", 1),
    (147, "Kantor Pertanahan Kabupaten Bogor", 146),
    (2, "Badan Pengawas Obat dan Makanan", 0),
    (201, "Balai Besar POM di Bandung", 2),
    (3, "Pemerintah Provinsi Jawa Barat", 0),
    (4, "Pemerintah Kota Bandung", 3),
    (401, "Dinas Perhubungan Kota Bandung", 4),
    (5, "Kementerian Kesehatan", 0),
    (9, "Admin Nasional SP4N-LAPOR!", 0),
]
# LAPOR!'s location list (regions, by their BPS kode wilayah) [INF]: a small subset
LOCATIONS = [
    {"id": 3273, "name": "Kota Bandung"},
    {"id": 3201, "name": "Kabupaten Bogor"},
    {"id": 3204, "name": "Kabupaten Bandung"},
    {"id": 3171, "name": "Kota Jakarta Pusat"},
    {"id": 3578, "name": "Kota Surabaya"},
]
LOCATION_IDS = frozenset(loc["id"] for loc in LOCATIONS)
DEFAULT_LOCATION = 3273

OWN_NAME = "Kantor Pertanahan Kota Bandung"
ADMIN_INSTITUTION = 9

# (id, parent_id, name): a three-level tree
CATEGORIES = [
    (10, 0, "Pertanahan"),
    (436, 10, "Sertifikat Tanah"),
    (437, 436, "Sertifikat Elektronik"),
    (438, 10, "Sengketa dan Konflik Pertanahan"),
    (439, 10, "Pengukuran dan Pemetaan"),
    (20, 0, "Kesehatan"),
    (520, 20, "Obat dan Makanan"),
    (521, 20, "Pelayanan Rumah Sakit"),
    (30, 0, "Infrastruktur"),
    (630, 30, "Jalan Rusak"),
    (631, 30, "Drainase dan Banjir"),
    (40, 0, "Pelayanan Publik"),
    (740, 40, "Pungutan Liar"),
    (741, 40, "Antrian dan Waktu Layanan"),
    (742, 40, "Sikap Petugas"),
    (50, 0, "Perhubungan"),
    (850, 50, "Angkutan Umum"),
    (60, 0, "Lainnya"),
    (960, 60, "Lain-lain"),
]

TEMPLATES = [
    {"template_code": "disposition", "title": "Disposisi", "type": "log",
     "content": "Laporan didisposisikan dari {{institution_from}} kepada {{ institution_to }}"},
    {"template_code": "status_change", "title": "Perubahan Status", "type": "log",
     "content": "Status laporan berubah dari {{status_old}} menjadi {{ status_new }}"},
    {"template_code": "followup", "title": "Tindak Lanjut", "type": "followup",
     "content": "{{institution_from}} memberikan tindak lanjut"},
    {"template_code": "reject", "title": "Bukan Wewenang", "type": "log",
     "content": "{{ institution_from }} menyatakan bukan wewenang; diteruskan kepada {{institution_to}}"},
    {"template_code": "auto_close", "title": "Selesai Otomatis", "type": "log",
     "content": "Laporan ditutup otomatis: status {{status_old}} menjadi {{status_new}}"},
    {"template_code": "edit", "title": "Perubahan Data Laporan", "type": "log",
     "content": "{{institution_from}} mengubah data laporan"},
]  # fmt: skip

SUBJECTS = {
    436: ("Sertifikat tanah belum terbit setelah 6 bulan", "Saya mengajukan sertifikat sejak Mei namun belum ada kabar."),
    437: ("Sertifikat elektronik tidak bisa diunduh", "Aplikasi Sentuh Tanahku gagal menampilkan sertifikat elektronik."),
    438: ("Sengketa batas tanah dengan tetangga", "Patok batas dipindahkan tanpa pemberitahuan."),
    439: ("Jadwal pengukuran tanah terus diundur", "Petugas ukur tidak datang sesuai jadwal yang dijanjikan."),
    520: ("Obat kedaluwarsa dijual di apotek", "Ditemukan obat dengan tanggal kedaluwarsa yang sudah lewat."),
    521: ("Antrian IGD rumah sakit sangat lama", "Pasien menunggu lebih dari lima jam di IGD."),
    630: ("Jalan berlubang di Jalan Soekarno-Hatta", "Lubang besar membahayakan pengendara motor."),
    631: ("Saluran air tersumbat menyebabkan banjir", "Setiap hujan, air menggenangi rumah warga."),
    740: ("Pungutan liar di loket pelayanan", "Petugas meminta uang tambahan untuk mempercepat berkas."),
    741: ("Antrian loket pertanahan terlalu panjang", "Nomor antrian habis sebelum pukul delapan pagi."),
    742: ("Petugas tidak ramah kepada pemohon", "Pemohon dibentak saat menanyakan kelengkapan berkas."),
    850: ("Angkutan kota menaikkan tarif sepihak", "Tarif naik tanpa pengumuman resmi."),
    960: ("Informasi layanan di situs web tidak lengkap", "Persyaratan layanan tidak dicantumkan."),
}  # fmt: skip

FIRST_NAMES = [
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Rudi",
    "Ani",
    "Joko",
    "Rina",
    "Ahmad",
    "Nur",
    "Wayan",
    "Putu",
]
LAST_NAMES = [
    "Santoso",
    "Aminah",
    "Wibowo",
    "Lestari",
    "Hidayat",
    "Saputra",
    "Kurniawan",
    "Rahmawati",
]

FOLLOWUP_TEXTS = [
    "Terima kasih atas laporan Anda. Berkas sedang kami periksa.",
    "Petugas sudah melakukan peninjauan ke lokasi.",
    "Laporan telah diteruskan kepada unit terkait untuk ditindaklanjuti.",
]
REPLY_TEXTS = [
    "Terima kasih, mohon kabari perkembangannya.",
    "Sampai hari ini belum ada perubahan.",
]
ADMIN_TEXTS = ["Mohon instansi segera memberikan tindak lanjut."]

STATUS_WEIGHTS = [
    ("unverified", 2), ("postponed", 1), ("verified", 3), ("in_process", 4),
    ("done", 2), ("archived", 1), ("rejected", 1),
]  # fmt: skip


def institutions(own_id: int) -> list[dict[str, Any]]:
    """The institution tree, with the simulated agency under the land ministry."""
    rows = [{"id": i, "name": n, "parent_id": p} for i, n, p in INSTITUTIONS if i != own_id]
    rows.append({"id": own_id, "name": OWN_NAME, "parent_id": 146 if own_id != 146 else 1})
    return sorted(rows, key=lambda r: r["id"])


def categories() -> list[dict[str, Any]]:
    """The category tree (parent_id 0 = root)."""
    return [{"id": i, "parent_id": p, "name": n} for i, p, n in CATEGORIES]


def _at_office_hours(rng: random.Random, day: datetime) -> datetime:
    return day.replace(
        hour=rng.randint(7, 16), minute=rng.randint(0, 59), second=rng.randint(0, 59), microsecond=0
    )


def complaints(
    rng: random.Random, count: int, own_id: int, now: datetime, first_id: int = 5010600
) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """``count`` complaints spread over every state, and their follow-ups by complaint id."""
    others = [i for i, _, _ in INSTITUTIONS if i not in (own_id, ADMIN_INSTITUTION, 1, 2, 3)]
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    leaf_categories = [c for c in SUBJECTS]
    result, followups = [], {}
    followup_id = 880000
    for index in range(count):
        complaint_id = first_id + index
        created = _at_office_hours(rng, now - timedelta(days=rng.randint(3, 40)))
        status = (
            statuses[index % len(statuses)]
            if index >= 3
            else rng.choice(["verified", "in_process"])
        )
        anonymous = rng.random() < 0.2
        secret = rng.random() < 0.15
        holder: int | None = own_id
        holders: list[int] = [own_id]
        if index == 0 or index == 1:  # guaranteed foreign complaints: one secret, one public
            holder, holders, secret = (
                others[index % len(others)],
                [others[index % len(others)]],
                index == 0,
            )
        elif index == 2:  # previously ours, forwarded as not our authority
            holder, holders = others[0], [own_id, others[0]]
        elif rng.random() < 0.12:
            holder = rng.choice(others)
            holders = [holder]
        if status == "unverified":
            holder, holders = None, []
        category = rng.choice(leaf_categories)
        title, content = SUBJECTS[category]
        reporter = None
        if not anonymous:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            reporter = {
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@contoh.id",
                "phone": f"+62812{rng.randint(10000000, 99999999)}",
            }
        disposed = created + timedelta(hours=rng.randint(2, 48)) if holder else None
        updated = max(created, disposed or created) + timedelta(hours=rng.randint(1, 48))
        updated = min(updated, now - timedelta(minutes=10))
        complaint: dict[str, Any] = {
            "id": complaint_id,
            "tracking_id": str(1916400 + index),
            "title": title,
            "content": content,
            "channel": rng.choice([13, 26]),
            "classification_id": rng.choice([1, 2, 2, 2, 3]),
            "category_id": category,
            "location_id": rng.choice([3273, 3201, 3204]),
            "date_of_incident": (created.date() - timedelta(days=rng.randint(0, 10))).isoformat(),
            "tags_raw": "",
            "is_secret": secret,
            "is_anonymous": anonymous,
            "status": status,
            "disposition_id": holder,
            "holders": holders,
            "creator_id": None,
            "reporter": reporter,
            "attachments": [],
            "external_ref": None,
            "created_at": created,
            "updated_at": updated,
            "disposed_at": disposed,
            "postponed_at": updated if status == "postponed" else None,
            "last_followup_at": None,
            "replied_since_followup": False,
            "status_logs": [{"note": "Laporan diterima", "at": created}],
            "logs": [],
        }
        if disposed:
            complaint["status_logs"].append(
                {"note": "Laporan diverifikasi dan didisposisikan", "at": disposed}
            )
            complaint["logs"].append(
                {"template_code": "disposition", "at": disposed, "from": "Admin Nasional SP4N-LAPOR!", "to": None,
                 "status_old": "Belum Terverifikasi", "status_new": "Terverifikasi", "holder": holders[0]}
            )  # fmt: skip
        items = []
        if status in ("in_process", "done") and disposed:
            followup_id += 1
            at = disposed + timedelta(hours=rng.randint(1, 20))
            items.append({"id": followup_id, "at": min(at, updated), "content": rng.choice(FOLLOWUP_TEXTS),
                          "author_type": "institution", "template_code": "followup", "is_secret": False})  # fmt: skip
            complaint["last_followup_at"] = min(at, updated)
            if rng.random() < 0.5:
                followup_id += 1
                items.append({"id": followup_id, "at": updated, "content": rng.choice(REPLY_TEXTS),
                              "author_type": "reporter", "template_code": None, "is_secret": False})  # fmt: skip
                complaint["replied_since_followup"] = True
            if rng.random() < 0.2:
                followup_id += 1
                items.append({"id": followup_id, "at": updated, "content": rng.choice(ADMIN_TEXTS),
                              "author_type": "admin", "template_code": None, "is_secret": False})  # fmt: skip
        followups[complaint_id] = items
        result.append(complaint)
    return result, followups


def incident_date(value: object) -> date | None:
    """Parse a Y-m-d date, or None."""
    return date.fromisoformat(value) if isinstance(value, str) and value else None


#: A small valid JPEG (an 8x8 grey baseline image): the photo a citizen attaches in the demo.
FOTO_JPG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000"
    "ffdb004300" + "01" * 64 + "ffc0000b080008000801011100"
    "ffc4001400" + "01" + "00" * 15 + "00"
    "ffc4001410" + "01" + "00" * 15 + "00"
    "ffda0008010100003f00" + "3f" + "ffd9"
)
