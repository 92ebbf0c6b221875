//! Compilation of the whole set: lists and macros into the compiler, then
//! every rule with its exceptions and output.

use super::*;

impl RulesetBuilder {
    /// Compile everything added. Returns all errors found, not just the first.
    pub fn build(mut self) -> Result<Ruleset, LoadError> {
        let lists: HashMap<String, ListDef> =
            self.lists.iter().map(|(k, v)| (k.clone(), ListDef { items: v.items.clone() })).collect();
        let macro_src: HashMap<String, MacroSrc> =
            self.macros.iter().map(|(k, v)| (k.clone(), MacroSrc { text: v.cond.text.clone() })).collect();
        let mut compiler = Compiler::new(&lists, &macro_src);
        for name in &self.macro_order {
            let _ = compiler.macro_expr(name);
        }
        let mut errors: Vec<(usize, Diagnostic)> = Vec::new();
        let mut warnings: Vec<(usize, Diagnostic)> = Vec::new();
        let mut compiled = Vec::new();
        // Conditions of the rules that count (enabled and not skipped): errors
        // in the macros they use are errors, errors elsewhere warnings.
        let mut live: Vec<&str> = Vec::new();
        let mut skipped = std::mem::take(&mut self.skipped);
        for r in &self.rules {
            let ctx = format!("condition of rule {:?}", r.name);
            let mut errs: Vec<CErr> = Vec::new();
            let mut fail: Option<Fail> = None;
            let expr = match parse::parse(&r.cond.text) {
                Ok(ast) => match compiler.compile(&ast, &Origin::Rule, &mut errs) {
                    Ok(e) => Some(e),
                    Err(f) => {
                        fail = Some(f);
                        None
                    }
                },
                Err(e) => {
                    errs.push(CErr { origin: Origin::Rule, off: e.off, msg: e.message, unknown_field: None });
                    fail = Some(Fail { unknown: Vec::new(), hard: true });
                    None
                }
            };
            let mut diags: Vec<(usize, Diagnostic)> =
                errs.iter().map(|e| self.cerr(&r.cond, e.off, &e.msg, &ctx)).collect();
            let mut unknown: Vec<String> = fail.as_ref().map(|f| f.unknown.clone()).unwrap_or_default();
            let mut hard = fail.as_ref().is_some_and(|f| f.hard);
            // Exceptions.
            let mut exc_exprs = Vec::new();
            for e in &r.exceptions {
                match self.exception(&compiler, r, e) {
                    Ok(Some(x)) => exc_exprs.push(x),
                    Ok(None) => {}
                    Err((d, u)) => {
                        match u {
                            Some(u) => unknown.push(u),
                            None => hard = true,
                        }
                        diags.push(d);
                    }
                }
            }
            // Output.
            // Falco trims the output (`output: >` ends in a newline).
            let out_text = r.output.text.trim_end();
            let lead = out_text.len() - out_text.trim_start().len();
            let template = match Template::parse(out_text.trim_start()) {
                Ok(t) => Some(t),
                Err(terrs) => {
                    for mut te in terrs {
                        te.off += lead;
                        match te.unknown_field {
                            Some(u) => unknown.push(u),
                            None => hard = true,
                        }
                        diags.push(self.cerr(
                            &r.output,
                            te.off,
                            &te.msg,
                            &format!("output of rule {:?}", r.name),
                        ));
                    }
                    None
                }
            };
            let ok = diags.is_empty() && fail.is_none();
            unknown.dedup();
            let skip = !ok && (self.skip_unknown_fields || r.skip_if_unknown) && !hard && !unknown.is_empty();
            if r.enabled && !skip {
                live.push(&r.cond.text);
            }
            if !ok {
                if skip {
                    let reason = format!(
                        "it uses field(s) {} that rampart does not provide",
                        unknown.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
                    );
                    let d = self.diag(r.file, r.pos, format!("rule {:?} skipped: {reason}", r.name));
                    skipped.push(SkippedRule {
                        name: r.name.clone(),
                        file: d.1.file.clone(),
                        line: r.pos.line,
                        reason,
                    });
                    warnings.push(d);
                } else if !r.enabled {
                    for (f, mut d) in diags {
                        d.message = format!("{} (rule is disabled)", d.message);
                        warnings.push((f, d));
                    }
                } else {
                    errors.extend(diags);
                }
                continue;
            }
            let (Some(mut expr), Some(template)) = (expr, template) else { continue };
            if !exc_exprs.is_empty() {
                let exc = if exc_exprs.len() == 1 {
                    exc_exprs.pop().unwrap_or(Expr::Const(false))
                } else {
                    Expr::Or(exc_exprs.into_boxed_slice())
                };
                expr = Expr::And(vec![expr, Expr::Not(Box::new(exc))].into_boxed_slice());
            }
            let types = expr.evt_types();
            let expr = expr.optimize(types.as_ref());
            let evt_types = types.map(|s| s.into_iter().collect::<Vec<_>>());
            compiled.push(CompiledRule {
                name: r.name.clone(),
                desc: r.desc.clone(),
                priority: r.priority,
                tags: r.tags.clone(),
                source: r.source.clone(),
                output: r.output.text.trim().to_string(),
                enabled: r.enabled,
                extra: r.extra.clone(),
                file: self.files.get(r.file).map(|f| f.name.clone()).unwrap_or_default(),
                line: r.pos.line,
                evt_types,
                expr,
                template,
            });
        }
        let used = self.macros_used_by(live.iter().copied());
        let other: Vec<&str> = self.other_source_rules.values().filter_map(|(_, c)| c.as_deref()).collect();
        let used_by_other = self.macros_used_by(other.into_iter());
        debug!(spent = compiler.spent(), budget = crate::compile::EXPANSION_BUDGET, "rule set expansion");
        // Macro errors, once each.
        for e in &compiler.macro_errs {
            if e.unknown_field.is_some() && self.skip_unknown_fields {
                continue;
            }
            let Origin::Macro(m) = &e.origin else { continue };
            let Some(entry) = self.macros.get(m) else { continue };
            let d = self.cerr(&entry.cond, e.off, &e.msg, &format!("condition of macro {m:?}"));
            if used.contains(m.as_str()) {
                errors.push(d);
            } else {
                // Falco compiles only what rules use: not an error (yet).
                let (f, mut d) = d;
                d.message = if used_by_other.contains(m.as_str()) {
                    format!("{} (macro only used by rules of other sources; skipped)", d.message)
                } else {
                    format!("{} (macro not used by any enabled rule; ignored)", d.message)
                };
                warnings.push((f, d));
            }
        }
        let mut all_errors = std::mem::take(&mut self.errors);
        all_errors.extend(errors);
        let mut all_warnings = std::mem::take(&mut self.warnings);
        all_warnings.extend(warnings);
        let order = |v: &mut Vec<(usize, Diagnostic)>| {
            v.sort_by_key(|d| (d.0, d.1.line, d.1.col));
            v.dedup_by(|a, b| a.1 == b.1);
        };
        order(&mut all_errors);
        order(&mut all_warnings);
        let warnings: Vec<Diagnostic> = all_warnings.into_iter().map(|(_, d)| d).collect();
        if !all_errors.is_empty() {
            return Err(LoadError { errors: all_errors.into_iter().map(|(_, d)| d).collect(), warnings });
        }
        Ok(Ruleset::new(compiled, warnings, skipped))
    }

    /// The macros the conditions use, directly or through other macros.
    fn macros_used_by<'c>(&self, conds: impl Iterator<Item = &'c str>) -> std::collections::HashSet<String> {
        let mut seen = std::collections::HashSet::new();
        let mut todo: Vec<String> = Vec::new();
        let names = |text: &str, out: &mut Vec<String>| {
            if let Ok(ast) = parse::parse(text) {
                ast.macro_names(out);
            }
        };
        for c in conds {
            names(c, &mut todo);
        }
        while let Some(m) = todo.pop() {
            let Some(entry) = self.macros.get(&m) else { continue };
            if seen.insert(m) {
                names(&entry.cond.text, &mut todo);
            }
        }
        seen
    }

    /// Compile one exception into the expression it excludes (`None` when it has
    /// no values).
    #[allow(clippy::type_complexity)]
    pub(super) fn exception(
        &self,
        compiler: &Compiler<'_>,
        r: &RuleEntry,
        e: &ExceptionEntry,
    ) -> Result<Option<Expr>, ((usize, Diagnostic), Option<String>)> {
        let what = format!("rule {:?}: exception {:?}", r.name, e.name);
        let err = |file: usize, pos: Pos, msg: String| (self.diag(file, pos, format!("{what}: {msg}")), None);
        let Some((ffile, fnode)) = &e.fields else {
            return Err(err(e.file, e.pos, "no fields".into()));
        };
        if e.values.is_empty() {
            return Ok(None);
        }
        let scalar_list = |file: usize,
                           n: &Node,
                           key: &str|
         -> Result<Vec<(String, Pos)>, ((usize, Diagnostic), Option<String>)> {
            match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .map(|i| match &i.kind {
                        Kind::Scalar(s, _) => Ok((s.clone(), i.pos)),
                        _ => Err(err(file, i.pos, format!("{key} must be strings"))),
                    })
                    .collect(),
                _ => Err(err(file, n.pos, format!("{key} must be a sequence"))),
            }
        };
        let cmp = |field: &str, pos: (usize, Pos), op: Op, vals: Vec<ValTok>, vpos: &[(usize, Pos)]| {
            let vals = if op.takes_list() {
                compiler
                    .expand_values(&vals)
                    .map_err(|(_, msg)| (self.diag(pos.0, pos.1, format!("{what}: {msg}")), None))?
            } else {
                vals
            };
            let Some((name, arg, xf)) = exception_field(field) else {
                return Err(err(pos.0, pos.1, format!("{field:?} is not a field (or a transformed field)")));
            };
            build_cmp(&name, arg.as_deref(), &xf, None, op, &vals).map(|c| Expr::Cmp(Box::new(c))).map_err(
                |ce| {
                    let at = match ce.value {
                        Some(i) => vals.get(i).and_then(|v| vpos.get(v.off)).copied().unwrap_or(pos),
                        None => pos,
                    };
                    (self.diag(at.0, at.1, format!("{what}: {}", ce.msg)), ce.unknown_field.clone())
                },
            )
        };
        let op_of = |s: &str, file: usize, pos: Pos| -> Result<Op, ((usize, Diagnostic), Option<String>)> {
            Op::from_word(s.trim())
                .ok_or_else(|| err(file, pos, format!("unknown comparison operator {s:?}")))
        };
        match &fnode.kind {
            Kind::Scalar(field, _) => {
                // Single field: `field comp (values...)`.
                let op = match &e.comps {
                    Some((cf, c)) => match c.as_str() {
                        Some(s) => op_of(s, *cf, c.pos)?,
                        None => {
                            return Err(err(
                                *cf,
                                c.pos,
                                "comps must be a single operator when fields is one field".into(),
                            ))
                        }
                    },
                    None => Op::In,
                };
                let mut vals = Vec::new();
                let mut vpos = Vec::new();
                for (vf, v) in &e.values {
                    match &v.kind {
                        Kind::Scalar(s, st) => {
                            vals.push(value_tok(s, *st, vpos.len()));
                            vpos.push((*vf, v.pos));
                        }
                        Kind::Seq(items) => {
                            for i in items {
                                if let Kind::Scalar(s, st) = &i.kind {
                                    vals.push(value_tok(s, *st, vpos.len()));
                                    vpos.push((*vf, i.pos));
                                }
                            }
                        }
                        _ => return Err(err(*vf, v.pos, "values must be strings".into())),
                    }
                }
                if op.takes_list() {
                    cmp(field, (*ffile, fnode.pos), op, vals, &vpos).map(Some)
                } else {
                    let mut alts = Vec::new();
                    for v in vals {
                        alts.push(cmp(field, (*ffile, fnode.pos), op, vec![v], &vpos)?);
                    }
                    Ok(Some(Expr::Or(alts.into_boxed_slice())))
                }
            }
            Kind::Seq(_) => {
                let fields = scalar_list(*ffile, fnode, "fields")?;
                let comps: Vec<(Op, usize, Pos)> = match &e.comps {
                    Some((cf, c)) => {
                        let cs = scalar_list(*cf, c, "comps")?;
                        if cs.len() != fields.len() {
                            return Err(err(
                                *cf,
                                c.pos,
                                format!("{} comps for {} fields", cs.len(), fields.len()),
                            ));
                        }
                        cs.iter()
                            .map(|(s, p)| op_of(s, *cf, *p).map(|o| (o, *cf, *p)))
                            .collect::<Result<_, _>>()?
                    }
                    None => fields.iter().map(|_| (Op::Eq, *ffile, fnode.pos)).collect(),
                };
                let mut alts = Vec::new();
                for (vf, tuple) in &e.values {
                    let Kind::Seq(items) = &tuple.kind else {
                        return Err(err(
                            *vf,
                            tuple.pos,
                            "each value must be a sequence with one item per field".into(),
                        ));
                    };
                    if items.len() != fields.len() {
                        return Err(err(
                            *vf,
                            tuple.pos,
                            format!("value has {} items but there are {} fields", items.len(), fields.len()),
                        ));
                    }
                    let mut conj = Vec::new();
                    for ((item, (field, fpos)), (op, _, _)) in items.iter().zip(&fields).zip(&comps) {
                        let mut vals = Vec::new();
                        let mut vpos = Vec::new();
                        match &item.kind {
                            Kind::Scalar(s, st) => {
                                vals.push(value_tok(s, *st, 0));
                                vpos.push((*vf, item.pos));
                            }
                            Kind::Seq(list) if op.takes_list() => {
                                for i in list {
                                    match &i.kind {
                                        Kind::Scalar(s, st) => {
                                            vals.push(value_tok(s, *st, vpos.len()));
                                            vpos.push((*vf, i.pos));
                                        }
                                        _ => return Err(err(*vf, i.pos, "values must be strings".into())),
                                    }
                                }
                            }
                            _ => {
                                return Err(err(
                                    *vf,
                                    item.pos,
                                    format!(
                                    "a list value needs a list operator (in, intersects, pmatch), not '{}'",
                                    op.as_str()
                                ),
                                ))
                            }
                        }
                        conj.push(cmp(field, (*ffile, *fpos), *op, vals, &vpos)?);
                    }
                    alts.push(Expr::And(conj.into_boxed_slice()));
                }
                Ok(Some(Expr::Or(alts.into_boxed_slice())))
            }
            _ => {
                Err(err(*ffile, fnode.pos, "fields must be a field name or a sequence of field names".into()))
            }
        }
    }
}

/// An exception value as a condition value: quoted when YAML quoted it, or
/// when its text is itself a quoted string (Falco pastes values into the
/// condition text, so `'"a b"'` is the string `a b`).
fn value_tok(s: &str, style: Style, off: usize) -> ValTok {
    match parse::unquote_item(s) {
        Some(text) => ValTok { text, quoted: true, off },
        None => ValTok { text: s.to_string(), quoted: style != Style::Plain, off },
    }
}

/// An exception's field, as the condition parser reads a field: a name, its
/// bracket argument and the transformers around it (`tolower(proc.aname[2])`
/// -> (`proc.aname`, `Some("2")`, `[ToLower]`)). Falco pastes exception
/// fields into condition text, so what a condition accepts here is accepted;
/// anything but one field (e.g. `a and b`) is not.
fn exception_field(f: &str) -> Option<(String, Option<String>, Vec<parse::Transform>)> {
    match parse::parse(&format!("{} exists", f.trim())).ok()? {
        parse::Ast::Cmp { field, arg, op: Op::Exists, xf, rhs: None, .. } => Some((field, arg, xf)),
        _ => None,
    }
}
