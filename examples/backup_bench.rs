//! Size and time of a backup and a restore of a data dir with 100 tunnels
//! and a 50 MB static site (half incompressible bytes, half text), plus the
//! size of each part. Usage: `cargo run --release --example backup_bench`.

use std::time::Instant;

use portico::settings::{Secret, Settings};
use portico::store::{Store, TunnelFields};

fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let settings = Settings { data_dir: data.clone(), ..Default::default() };
    portico::init::run(&settings)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = Store::open(&settings.db_path())?;
    rt.block_on(async {
        let pki = portico::pki::Pki::new(&settings.data_dir);
        portico::agents::issue(pki, &store, "home".into(), vec![]).await?;
        let now = time::OffsetDateTime::now_utc();
        for i in 0..100 {
            let t = TunnelFields {
                name: format!("app{i}"),
                agent: "home".into(),
                target: format!("127.0.0.1:{}", 8000 + i),
                enabled: true,
                access: "authenticated".into(),
                allowed_users: vec![],
                allowed_groups: vec![],
                description: format!("tunnel number {i}"),
            };
            store.insert_tunnel(t, now).await?;
        }
        anyhow::Ok(())
    })?;
    let site = data.join("sites/big");
    std::fs::create_dir_all(&site)?;
    let mut random = vec![0u8; 25 * 1024 * 1024];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(site.join("images.bin"), &random)?;
    let text: String = (0..)
        .map(|i| format!("<p>paragraph {i} of the big static site</p>\n"))
        .take_while({
            let mut len = 0;
            move |l: &String| {
                len += l.len();
                len <= 25 * 1024 * 1024
            }
        })
        .collect();
    std::fs::write(site.join("index.html"), text)?;

    let pass = Secret::new("a passphrase for the benchmark");
    let t = Instant::now();
    let info = rt.block_on(portico::backup::create(&store, &settings, &pass))?;
    let backup_time = t.elapsed();
    let archive = settings.backup_dir().join(format!("{}{}", info.id, portico::backup::SUFFIX));
    let target = work.path().join("restored");
    let t = Instant::now();
    let restored = portico::backup::restore(&archive, &target, &pass, false)?;
    let restore_time = t.elapsed();
    println!("data dir: 100 tunnels, 50 MB site (25 MB random, 25 MB text)");
    println!("backup:  {:.1} MB in {:.2?} (includes ~1 s of scrypt)", info.size as f64 / 1e6, backup_time);
    println!("restore: {} files in {:.2?}", restored.files, restore_time);
    Ok(())
}
