//! One module per area; see each module's own doc.

mod browser_signin;
mod capture;
mod cli;
mod clients;
mod disk;
mod explain;
mod faults;
mod har;
mod hooks;
mod lifecycle;
mod limits;
mod load;
mod mock_idp;
mod par;
mod parsers_fuzz;
mod proxy;
mod robustness;
mod secrets;
mod signin;
mod tokens;
mod web;
mod web_browser;
mod web_faults;
